# Test double of OpenWrt's /lib/functions/procd.sh: the procd API calls an
# init script makes are appended to $FAKE_LOG (see ../functions.sh) instead
# of being sent to procd over ubus.
#
# procd_running answers from $FAKE_PROCD_RUNNING (1: the instance runs).
# procd_kill does what procd does to a running instance: SIGTERM to the pid
# in $FAKE_PIDFILE, when that file exists.

procd_lock() { :; }
procd_open_service() { fake_record procd_open_service "$@"; }
procd_close_service() {
	service_triggers
	fake_record procd_close_service "$@"
}
procd_open_instance() { fake_record procd_open_instance "$@"; }
procd_close_instance() { fake_record procd_close_instance "$@"; }
procd_set_param() { fake_record procd_set_param "$@"; }
procd_append_param() { fake_record procd_append_param "$@"; }
procd_add_reload_trigger() { fake_record procd_add_reload_trigger "$@"; }
procd_add_interface_trigger() { fake_record procd_add_interface_trigger "$@"; }
procd_add_config_trigger() { fake_record procd_add_config_trigger "$@"; }
procd_add_raw_trigger() { fake_record procd_add_raw_trigger "$@"; }
procd_send_signal() { fake_record procd_send_signal "$@"; }

procd_running() {
	fake_record procd_running "$@"
	[ "${FAKE_PROCD_RUNNING:-0}" = 1 ]
}

procd_kill() {
	fake_record procd_kill "$@"
	if [ -n "${FAKE_PIDFILE:-}" ] && [ -r "$FAKE_PIDFILE" ]; then
		kill -TERM "$(cat "$FAKE_PIDFILE")" 2>/dev/null || :
	fi
}
