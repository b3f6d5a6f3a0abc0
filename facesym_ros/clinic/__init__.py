"""A clinical assessment session, offline and free of ROS: protocol, per-task scores, report, calibration."""
