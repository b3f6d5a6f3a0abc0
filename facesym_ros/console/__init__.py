"""The clinic console: the operator's and the patient's pages, served by the rig (`facesym console`)."""
