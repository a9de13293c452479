package main

import "github.com/mwan3d/mwan3d/ubus/ubuscli"

func init() {
	register("ubus", "ubus tool: list, call, listen, send, subscribe, wait_for", ubuscli.Main)
}
