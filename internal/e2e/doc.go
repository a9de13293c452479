// Package e2e is the end-to-end scenario suite of mwan3d: real traffic
// through `mwan3d run` on the namespace testbed (internal/bed: a ubustest
// broker, the fake netifd and the daemon as a subprocess in the router
// namespace), asserting what a router owner sees — shares of new
// connections per WAN, failover and failback, rules, sticky sources,
// last_resort, IPv6, router-originated traffic, reloads under load and an
// interface flapping storm that leaks nothing.
//
// The package has only tests (files *_linux_test.go, configurations in
// testdata/). They need root and network namespaces; without them they
// skip, or fail with MWAN3D_REQUIRE_ROOT_TESTS=1:
//
//	MWAN3D_REQUIRE_ROOT_TESTS=1 go test -race -count=1 ./internal/e2e/
package e2e
