#!/bin/sh
# Build the mwan3d .ipk for one OpenWrt architecture without the SDK.
#
# usage: build.sh -a ARCH -b BINARY [-v VERSION] [-r RELEASE] [-o OUTDIR] [-e EPOCH]
#        build.sh -s DIR
#
#   -a ARCH     OpenWrt package architecture (x86_64, mipsel_24kc, ...)
#   -b BINARY   the static mwan3d binary built for ARCH
#   -v VERSION  upstream version: a tag (v1.2.3, or git describe's
#               v1.2.3-4-gabcdef) is used as is; anything else (a commit id,
#               "dev") becomes 0~VERSION so that any release sorts after it.
#               Default: PKG_VERSION of the feed Makefile.
#   -r RELEASE  package release (default: PKG_RELEASE of the feed Makefile)
#   -o OUTDIR   where the .ipk goes (default: .)
#   -e EPOCH    timestamp of every archive entry (default: $SOURCE_DATE_EPOCH,
#               else the last commit's time, else 0): same input, same bytes
#   -s DIR      only write the control scripts (postinst, prerm,
#               postinst-pkg) into DIR, for linting
#
# Everything else comes from the feed package (openwrt/mwan3d/Makefile and
# its files/): control fields, the install rules, conffiles and postinst, so
# this package and the SDK's carry the same files with the same modes.
#
# Format: the classic opkg package, a gzipped tar of ./debian-binary,
# ./data.tar.gz and ./control.tar.gz, as OpenWrt's ipkg-build writes it and
# every opkg reads it (no ar(1) needed). Entries are owned by 0:0, sorted,
# with one fixed mtime. Needs GNU tar and gzip.

# The feed Makefile's $(...) is matched literally, never expanded here.
# shellcheck disable=SC2016
set -eu

die() {
	echo "build.sh: $*" >&2
	exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
pkgdir=$(cd "$here/../openwrt/mwan3d" && pwd)
mk="$pkgdir/Makefile"

# mkvar NAME prints the value of the one-line assignment NAME:=value.
mkvar() {
	sed -n "s/^[[:space:]]*$1:=[[:space:]]*//p" "$mk" | sed -n '1p'
}

# mkblock NAME prints the body of "define NAME" ... "endef", with make's $$
# turned back into $.
mkblock() {
	awk -v name="define $1" '
		$0 == "endef" && inside { exit }
		inside { gsub(/\$\$/, "$"); print }
		$0 == name { inside = 1 }
	' "$mk"
}

# ipk_version RAW maps a version to one opkg orders sensibly (see -v).
ipk_version() {
	_v=${1#v}
	case "$_v" in
	"") die "empty version" ;;
	[0-9]*.[0-9]*) ;;
	*) _v="0~$_v" ;;
	esac
	printf '%s' "$_v" | tr -c 'A-Za-z0-9.+~' '.'
}

# write_control_scripts DIR writes the maintainer scripts OpenWrt's
# package-ipkg.mk generates: postinst and prerm call default_postinst and
# default_prerm (which enable/start and stop/disable the init script and run
# uci-defaults); the package's own postinst goes to postinst-pkg.
write_control_scripts() {
	cat >"$1/postinst" <<'EOF'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
# shellcheck disable=SC1091
. "${IPKG_INSTROOT}/lib/functions.sh"
default_postinst "$0" "$@"
EOF
	cat >"$1/prerm" <<'EOF'
#!/bin/sh
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
# shellcheck disable=SC1091
. "${IPKG_INSTROOT}/lib/functions.sh"
default_prerm "$0" "$@"
EOF
	mkblock Package/mwan3d/postinst >"$1/postinst-pkg"
	[ -s "$1/postinst-pkg" ] || die "no Package/mwan3d/postinst in $mk"
	chmod 0755 "$1/postinst" "$1/prerm" "$1/postinst-pkg"
}

# install_files STAGE BINARY runs the feed Makefile's install rules.
install_files() {
	mkblock Package/mwan3d/install | while read -r cmd a b extra; do
		[ -n "$cmd" ] || continue
		[ -z "$extra" ] || die "install rule with too many words: $cmd $a $b $extra"
		case "$cmd" in
		'$(INSTALL_DIR)') mode= ;;
		'$(INSTALL_BIN)') mode=0755 ;;
		'$(INSTALL_CONF)') mode=0600 ;;
		'$(INSTALL_DATA)') mode=0644 ;;
		'$(LN)') mode='link' ;;
		*) die "install rule not understood: $cmd $a $b" ;;
		esac
		if [ -z "$mode" ]; then
			case "$a" in '$(1)/'*) ;; *) die "install dir outside the package: $a" ;; esac
			mkdir -p "$1/${a#'$(1)/'}"
			continue
		fi
		case "$b" in '$(1)/'*) ;; *) die "install target outside the package: $b" ;; esac
		dst="$1/${b#'$(1)/'}"
		case "$a" in
		'$(GO_PKG_BUILD_BIN_DIR)/mwan3d') src=$2 ;;
		./files/*) src="$pkgdir/${a#./}" ;;
		*) [ "$mode" = link ] || die "install source not understood: $a" ;;
		esac
		case "$dst" in */) dst="$dst$(basename "$a")" ;; esac
		if [ "$mode" = link ]; then
			ln -s "$a" "$dst"
		else
			[ -f "$src" ] || die "missing file: $src"
			cp "$src" "$dst"
			chmod "$mode" "$dst"
		fi
	done
	find "$1" -type d -exec chmod 0755 {} +
}

# tgz DIR OUT archives the contents of DIR as ./... entries.
tgz() {
	(cd "$1" && tar --format=gnu --numeric-owner --owner=0 --group=0 \
		--sort=name --mtime="@$epoch" -cf - .) | gzip -9n >"$2"
}

arch='' binary='' version='' release='' outdir=. epoch=${SOURCE_DATE_EPOCH:-} scripts=''
while getopts a:b:v:r:o:e:s: opt; do
	case "$opt" in
	a) arch=$OPTARG ;;
	b) binary=$OPTARG ;;
	v) version=$OPTARG ;;
	r) release=$OPTARG ;;
	o) outdir=$OPTARG ;;
	e) epoch=$OPTARG ;;
	s) scripts=$OPTARG ;;
	*) die "usage: build.sh -a ARCH -b BINARY [-v VERSION] [-r RELEASE] [-o OUTDIR] [-e EPOCH] | -s DIR" ;;
	esac
done

if [ -n "$scripts" ]; then
	mkdir -p "$scripts"
	write_control_scripts "$scripts"
	exit 0
fi

[ -n "$arch" ] || die "missing -a ARCH"
[ -n "$binary" ] || die "missing -b BINARY"
[ -f "$binary" ] || die "binary not found: $binary"
case "$arch" in *[!A-Za-z0-9_.-]*) die "bad architecture name: $arch" ;; esac
tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is required"
command -v gzip >/dev/null || die "gzip is required"

[ -n "$version" ] || version=$(mkvar PKG_VERSION)
[ -n "$release" ] || release=$(mkvar PKG_RELEASE)
case "$release" in '' | *[!0-9]*) die "bad release: $release" ;; esac
fullversion="$(ipk_version "$version")-r$release"
if [ -z "$epoch" ]; then
	epoch=$(git -C "$here" log -1 --format=%ct 2>/dev/null || true)
	epoch=${epoch:-0}
fi
case "$epoch" in '' | *[!0-9]*) die "bad epoch: $epoch" ;; esac

name=$(mkvar PKG_NAME)
depends=$(mkvar DEPENDS)
deps=
for d in $depends; do
	case "$d" in
	'$('* | @*) ;;
	*:*) die "conditional dependency not supported: $d" ;;
	*) deps="${deps:+$deps, }${d#+}" ;;
	esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/data" "$work/control"
install_files "$work/data" "$binary"

mkblock Package/mwan3d/conffiles >"$work/control/conffiles"
while read -r f; do
	[ -f "$work/data$f" ] || die "conffile not in the package: $f"
done <"$work/control/conffiles"
write_control_scripts "$work/control"

size=$(find "$work/data" -type f -exec cat {} + | wc -c | tr -d ' ')
field() {
	[ -z "$2" ] || printf '%s: %s\n' "$1" "$2"
}
{
	field Package "$name"
	field Version "$fullversion"
	field Depends "$deps"
	field Conflicts "$(mkvar CONFLICTS | sed 's/ \{1,\}/, /g')"
	field Provides "$(mkvar PROVIDES)"
	field License "$(mkvar PKG_LICENSE)"
	field Section "$(mkvar SECTION)"
	field Maintainer "$(mkvar PKG_MAINTAINER)"
	field Architecture "$arch"
	field Installed-Size "$size"
	printf 'Description: '
	mkblock Package/mwan3d/description | sed -e 's/^[[:space:]]*/ /'
} >"$work/control/control"
chmod 0644 "$work/control/control" "$work/control/conffiles"

printf '2.0\n' >"$work/debian-binary"
tgz "$work/data" "$work/data.tar.gz"
tgz "$work/control" "$work/control.tar.gz"
mkdir -p "$outdir"
out="$outdir/${name}_${fullversion}_$arch.ipk"
(cd "$work" && tar --format=gnu --numeric-owner --owner=0 --group=0 \
	--mtime="@$epoch" -cf - ./debian-binary ./data.tar.gz ./control.tar.gz) |
	gzip -9n >"$out"
printf '%-60s %9d bytes\n' "$out" "$(wc -c <"$out")"
