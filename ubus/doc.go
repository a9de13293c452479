// Package ubus is a pure-Go client for OpenWrt's ubus message bus.
//
// It has three layers, like mdlayher/netlink:
//
//   - a codec for libubox blob and blobmsg attributes: [Table] is an ordered
//     blobmsg table, [AppendTable] encodes Go values (tables, maps, structs
//     with `ubus:"name"` tags, slices, numbers) with exact blobmsg types and
//     [DecodeTable] decodes them losslessly; [ParseJSON] and [FormatJSON]
//     convert to and from JSON with the typing rules of the ubus command-line
//     tool (libubox blobmsg_json and json-c);
//   - message framing: [Message] is one ubus frame (header and attributes);
//   - a connection, [Conn], that talks to ubusd over its unix socket: lookups,
//     calls, objects with methods (including deferred replies), events,
//     subscriptions and notifications, with automatic reconnection.
//
// One reader goroutine per connection classifies incoming frames by type and
// never runs user code: method handlers run on goroutines of their own, and
// event and notification handlers run in order on one goroutine per listener
// or subscriber.
//
// Beyond libubus, for daemons: an object whose path is taken, or that is
// added while ubusd is away, is kept and registered as soon as it can be
// ([Conn.AddObject]); [Conn.Watch] subscribes to an object that may not
// exist yet and follows it; [Object.BadArgs] explains arguments that do not
// fit a typed policy; [Conn.Call] returns the data an object sent with an
// error status; [Encoded] replies are encoded once and sent many times.
//
// The wire format is described in the project's ubus protocol specification;
// the package reproduces the behaviour of libubus, checked against recordings
// of the real ubusd, libubus and ubus CLI.
package ubus
