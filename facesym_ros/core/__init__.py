"""The facial-asymmetry method, free of ROS.

Everything that decides a score lives here, so that the ROS nodes, the bag
tools and the `facesym` command all compute the same numbers.
"""
