//! Reading a systemd unit (fragment + drop-ins) and its ExecStart.
