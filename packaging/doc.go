// Package packaging is the OpenWrt packaging of mwan3d; it has no Go API.
//
// openwrt/mwan3d is the feed package (Makefile for golang-package.mk, procd
// init script, default configuration, /etc/mwan3.user, uci-defaults
// migration, rpcd ACL). ipk/build.sh builds the same .ipk without the SDK
// from that Makefile, and Makefile.inc gives the top-level Makefile its ipk
// and shellcheck targets. The tests build the packages for every supported
// architecture and check them, and run the shell scripts against test
// doubles of OpenWrt's rc.common, procd and UCI libraries (testdata/fakeroot).
package packaging
