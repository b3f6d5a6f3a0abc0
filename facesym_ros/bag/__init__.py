"""rosbag2 bags (MCAP and sqlite3) through the rosbags library: record, play and score offline."""
