# Test double of OpenWrt's /lib/functions.sh. Every call of interest is
# appended to $FAKE_LOG as "name [arg] [arg]...".
#
# UCI: config_foreach walks $FAKE_SECTIONS ("type:name ..."); config_get
# reads the environment variable FAKE_OPT_<section>_<option>.

fake_record() {
	fake_line=$1
	shift
	for fake_arg in "$@"; do
		fake_line="$fake_line [$fake_arg]"
	done
	printf '%s\n' "$fake_line" >>"$FAKE_LOG"
}

config_load() { fake_record config_load "$@"; }

config_get() {
	eval "fake_value=\${FAKE_OPT_$2_$3-}"
	[ -n "$fake_value" ] || fake_value=${4-}
	eval "$1=\$fake_value"
}

config_foreach() {
	fake_fn=$1
	fake_type=$2
	for fake_section in ${FAKE_SECTIONS-}; do
		if [ "${fake_section%%:*}" = "$fake_type" ]; then
			"$fake_fn" "${fake_section#*:}"
		fi
	done
}

uci_remove() { fake_record uci_remove "$@"; }
uci_add_list() { fake_record uci_add_list "$@"; }
uci_commit() { fake_record uci_commit "$@"; }

default_postinst() { fake_record default_postinst "$@"; }
default_prerm() { fake_record default_prerm "$@"; }
