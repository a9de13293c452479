package ubustest

import (
	"encoding/binary"
	"slices"
	"strings"

	"github.com/mwan3d/mwan3d/ubus"
	"github.com/mwan3d/mwan3d/ubus/internal/blob"
)

// noReply is returned by handlers that answered (or forwarded) on their own.
const noReply = -1

// newFrame starts a frame: the header and a reserved body header.
func newFrame(t ubus.MsgType, seq uint16, peer uint32) []byte {
	return blob.Frame(uint8(t), seq, peer)
}

// finish writes the body length of a frame built by newFrame.
func finish(f []byte) []byte { return blob.Finish(f) }

// reply starts a frame answering req: same seq and peer, version 0.
func reply(req *ubus.Message, t ubus.MsgType) []byte {
	return newFrame(t, req.Seq, req.Peer)
}

func (b *Broker) sendStatus(c *client, req *ubus.Message, status int) {
	f := reply(req, ubus.MsgStatus)
	f = blob.AppendU32(f, uint8(ubus.AttrStatus), uint32(status))
	b.send(c, finish(f))
}

// handle processes one frame from c, like ubusd_proto_receive_message.
func (b *Broker) handle(c *client, frame []byte) {
	var m ubus.Message
	if err := m.UnmarshalBinary(frame); err != nil {
		return
	}
	var ret int
	switch m.Type {
	case ubus.MsgPing:
		pong := slices.Clone(frame)
		pong[1] = byte(ubus.MsgData)
		b.send(c, pong)
	case ubus.MsgAddObject:
		ret = b.addObject(c, &m)
	case ubus.MsgRemoveObject:
		ret = b.removeObject(c, &m)
	case ubus.MsgLookup:
		ret = b.lookup(c, &m)
	case ubus.MsgInvoke:
		ret = b.invoke(c, &m)
	case ubus.MsgStatus, ubus.MsgData:
		b.response(c, &m, frame)
		ret = noReply
	case ubus.MsgSubscribe:
		ret = b.subscribe(c, &m)
	case ubus.MsgUnsubscribe:
		ret = b.unsubscribe(c, &m)
	case ubus.MsgNotify:
		ret = b.notify(c, &m)
	default:
		ret = int(ubus.StatusInvalidCommand)
	}
	if ret != noReply {
		b.sendStatus(c, &m, ret)
	}
}

func (b *Broker) addObject(c *client, m *ubus.Message) int {
	var typ *objType
	if tid, ok := m.GetU32(ubus.AttrObjType); ok {
		typ = b.types[tid]
	} else if sig, ok := m.Get(ubus.AttrSignature); ok {
		typ = b.newType(sig)
	}
	obj := &object{id: b.allocID(func(id uint32) bool { return b.objects[id] != nil }), typ: typ}
	if typ != nil {
		typ.refcount++
	}
	b.objects[obj.id] = obj
	if path, ok := m.GetString(ubus.AttrObjPath); ok {
		if b.paths[path] != nil {
			b.freeObject(obj)
			return int(ubus.StatusInvalidArgument)
		}
		obj.path, obj.hasPath = path, true
		b.paths[path] = obj
		b.objectEvent(obj, true)
	}
	obj.client = c
	c.objects = append(c.objects, obj)
	f := reply(m, ubus.MsgData)
	f = blob.AppendU32(f, uint8(ubus.AttrObjID), obj.id)
	if _, sig := m.Get(ubus.AttrSignature); sig && obj.typ != nil {
		f = blob.AppendU32(f, uint8(ubus.AttrObjType), obj.typ.id)
	}
	b.send(c, finish(f))
	b.cond.Broadcast()
	return 0
}

// newType builds an object type from a signature; nil when an entry is not
// a named blobmsg attribute.
func (b *Broker) newType(sig []byte) *objType {
	t := &objType{}
	for a := range blob.All(sig) {
		if !blob.Check(a, true) {
			return nil
		}
		name, value, _ := blob.MsgHeader(a)
		t.methods = append(t.methods, method{typ: a.ID, name: name, value: value})
	}
	t.id = b.allocID(func(id uint32) bool { return b.types[id] != nil })
	b.types[t.id] = t
	return t
}

func (b *Broker) removeObject(c *client, m *ubus.Message) int {
	id, ok := m.GetU32(ubus.AttrObjID)
	if !ok {
		return int(ubus.StatusInvalidArgument)
	}
	obj := b.objects[id]
	if obj == nil {
		return int(ubus.StatusNotFound)
	}
	if obj.client != c {
		return int(ubus.StatusPermissionDenied)
	}
	f := reply(m, ubus.MsgData)
	f = blob.AppendU32(f, uint8(ubus.AttrObjID), obj.id)
	if obj.typ != nil && obj.typ.refcount == 1 {
		f = blob.AppendU32(f, uint8(ubus.AttrObjType), obj.typ.id)
	}
	b.send(c, finish(f))
	b.freeObject(obj)
	return 0
}

// freeObject removes an object with ubusd's side effects, in ubusd's order.
func (b *Broker) freeObject(obj *object) {
	for len(obj.targets) > 0 {
		b.unsubscribe1(obj.targets[0])
	}
	for len(obj.subscribers) > 0 {
		s := obj.subscribers[0]
		s.subscriber.invokeSeq++
		f := newFrame(ubus.MsgUnsubscribe, s.subscriber.invokeSeq, 0)
		f = blob.AppendU32(f, uint8(ubus.AttrObjID), s.subscriber.id)
		f = blob.AppendU32(f, uint8(ubus.AttrTarget), s.target.id)
		b.send(s.subscriber.client, finish(f))
		b.unsubscribe1(s)
	}
	b.patterns = slices.DeleteFunc(b.patterns, func(p *pattern) bool { return p.obj == obj })
	if obj.hasPath {
		b.objectEvent(obj, false)
		delete(b.paths, obj.path)
	}
	if c := obj.client; c != nil {
		c.objects = slices.DeleteFunc(c.objects, func(o *object) bool { return o == obj })
	}
	delete(b.objects, obj.id)
	if t := obj.typ; t != nil {
		if t.refcount--; t.refcount == 0 {
			delete(b.types, t.id)
		}
	}
	b.cond.Broadcast()
}

func (b *Broker) lookup(c *client, m *ubus.Message) int {
	path, ok := m.GetString(ubus.AttrObjPath)
	if !ok {
		for _, p := range b.sortedPaths("") {
			b.sendObject(c, m, b.paths[p])
		}
		return 0
	}
	if path == "" {
		return int(ubus.StatusInvalidArgument)
	}
	if !strings.HasSuffix(path, "*") {
		obj := b.paths[path]
		if obj == nil {
			return int(ubus.StatusNotFound)
		}
		b.sendObject(c, m, obj)
		return 0
	}
	matches := b.sortedPaths(strings.TrimSuffix(path, "*"))
	if len(matches) == 0 {
		return int(ubus.StatusNotFound)
	}
	for _, p := range matches {
		b.sendObject(c, m, b.paths[p])
	}
	return 0
}

// sortedPaths returns the registered paths with the given prefix in strcmp
// order.
func (b *Broker) sortedPaths(prefix string) []string {
	var out []string
	for p := range b.paths {
		if strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// sendObject answers a LOOKUP with one object; untyped objects are skipped.
func (b *Broker) sendObject(c *client, m *ubus.Message, obj *object) {
	if obj.typ == nil {
		return
	}
	f := reply(m, ubus.MsgData)
	f = blob.AppendString(f, uint8(ubus.AttrObjPath), obj.path)
	f = blob.AppendU32(f, uint8(ubus.AttrObjID), obj.id)
	f = blob.AppendU32(f, uint8(ubus.AttrObjType), obj.typ.id)
	f, off := blob.Begin(f)
	for _, me := range obj.typ.methods {
		f = blob.AppendMsg(f, me.typ, me.name, me.value)
	}
	f = blob.End(f, off, uint8(ubus.AttrSignature), false)
	b.send(c, finish(f))
}

func (b *Broker) invoke(c *client, m *ubus.Message) int {
	meth, ok1 := m.GetString(ubus.AttrMethod)
	id, ok2 := m.GetU32(ubus.AttrObjID)
	if !ok1 || !ok2 {
		return int(ubus.StatusInvalidArgument)
	}
	obj := b.objects[id]
	if obj == nil {
		return int(ubus.StatusNotFound)
	}
	data, hasData := m.Get(ubus.AttrData)
	if obj.client == nil {
		return b.system(c, m, obj, meth, data, hasData)
	}
	b.forward(c, obj, m.Seq, meth, data, hasData, false)
	return noReply
}

// forward delivers an invocation (or a notification) to the owner of obj,
// from caller c: seq kept, peer = the caller's client id, USER and GROUP
// added.
func (b *Broker) forward(c *client, obj *object, seq uint16, meth string, data []byte, hasData, noReplyFlag bool) {
	f := newFrame(ubus.MsgInvoke, seq, c.id)
	if noReplyFlag {
		f = blob.AppendU8(f, uint8(ubus.AttrNoReply), 1)
	}
	f = blob.AppendU32(f, uint8(ubus.AttrObjID), obj.id)
	f = blob.AppendString(f, uint8(ubus.AttrMethod), meth)
	f = blob.AppendString(f, uint8(ubus.AttrUser), c.user)
	f = blob.AppendString(f, uint8(ubus.AttrGroup), c.group)
	if hasData {
		f = blob.AppendAttr(f, uint8(ubus.AttrData), data)
	}
	b.send(obj.client, finish(f))
}

// system handles invocations of ubusd's own objects 1 (events), 2 (ACL)
// and 3 (monitor).
func (b *Broker) system(c *client, m *ubus.Message, obj *object, meth string, data []byte, hasData bool) int {
	switch obj.id {
	case eventObjectID:
		switch meth {
		case "register":
			return b.register(c, data, hasData)
		case "send":
			return b.sendEvent(c, data, hasData)
		}
		return int(ubus.StatusInvalidCommand)
	case aclObjectID:
		if meth != "query" {
			return int(ubus.StatusInvalidCommand)
		}
		f := reply(m, ubus.MsgData)
		f = blob.AppendU32(f, uint8(ubus.AttrObjID), aclObjectID)
		f, off := blob.Begin(f)
		f = blob.AppendMsg(f, blob.TypeInt32, "seq", []byte{0, 0, 0, 0})
		f = blob.AppendMsg(f, blob.TypeArray, "acl", nil)
		f = blob.End(f, off, uint8(ubus.AttrData), false)
		b.send(c, finish(f))
		return 0
	case monitorObjectID:
		if !c.root {
			return int(ubus.StatusPermissionDenied)
		}
		switch meth {
		case "add":
			if !slices.Contains(b.monitors, c) {
				b.monitors = append(b.monitors, c)
			}
			return 0
		case "remove":
			b.monitors = slices.DeleteFunc(b.monitors, func(x *client) bool { return x == c })
			return 0
		}
		return int(ubus.StatusMethodNotFound)
	}
	return int(ubus.StatusNotFound)
}

func (b *Broker) register(c *client, data []byte, hasData bool) int {
	if !hasData {
		return int(ubus.StatusInvalidArgument)
	}
	idv, ok1 := blob.Find(data, "object", blob.TypeInt32)
	pv, ok2 := blob.Find(data, "pattern", blob.TypeString)
	if !ok1 || !ok2 {
		return int(ubus.StatusInvalidArgument)
	}
	id := be32(idv)
	if id < systemObjectMax {
		return int(ubus.StatusPermissionDenied)
	}
	obj := b.objects[id]
	if obj == nil {
		return int(ubus.StatusNotFound)
	}
	if obj.client != c {
		return int(ubus.StatusPermissionDenied)
	}
	key := cstring(pv)
	if key == "" {
		return int(ubus.StatusPermissionDenied)
	}
	p := &pattern{key: key, obj: obj}
	if strings.HasSuffix(key, "*") {
		p.key, p.partial = strings.TrimSuffix(key, "*"), true
	}
	i, _ := slices.BinarySearchFunc(b.patterns, p.key, func(e *pattern, k string) int {
		if e.key <= k {
			return -1
		}
		return 1
	})
	b.patterns = slices.Insert(b.patterns, i, p)
	return 0
}

func (b *Broker) sendEvent(c *client, data []byte, hasData bool) int {
	if !hasData {
		return int(ubus.StatusInvalidArgument)
	}
	idv, ok1 := blob.Find(data, "id", blob.TypeString)
	payload, ok2 := blob.Find(data, "data", blob.TypeTable)
	if !ok1 || !ok2 {
		return int(ubus.StatusInvalidArgument)
	}
	name := cstring(idv)
	if strings.HasPrefix(name, "ubus.") {
		return int(ubus.StatusPermissionDenied)
	}
	b.deliver(c, name, payload)
	return 0
}

// objectEvent emits ubus.object.add or ubus.object.remove for obj.
func (b *Broker) objectEvent(obj *object, add bool) {
	name := "ubus.object.remove"
	if add {
		name = "ubus.object.add"
	}
	var d []byte
	d = blob.AppendMsg(d, blob.TypeInt32, "id", binary.BigEndian.AppendUint32(nil, obj.id))
	d = blob.AppendMsg(d, blob.TypeString, "path", append([]byte(obj.path), 0))
	b.deliver(nil, name, d)
}

// deliver sends an event to every listening object with a matching pattern,
// once per object, never to objects of the sender.
func (b *Broker) deliver(sender *client, name string, data []byte) {
	b.eventGen++
	for _, p := range b.patterns {
		if name != p.key && !(p.partial && strings.HasPrefix(name, p.key)) {
			continue
		}
		obj := p.obj
		if obj.client == sender || obj.eventSeen == b.eventGen {
			continue
		}
		obj.eventSeen = b.eventGen
		b.eventSeq++
		f := newFrame(ubus.MsgInvoke, b.eventSeq, 0)
		f = blob.AppendU32(f, uint8(ubus.AttrObjID), obj.id)
		f = blob.AppendString(f, uint8(ubus.AttrMethod), name)
		f = blob.AppendAttr(f, uint8(ubus.AttrData), data)
		b.send(obj.client, finish(f))
	}
}

// response routes a DATA or STATUS from an object owner to the caller named
// by the header peer, rewriting peer to the object id. Anything that does
// not qualify is dropped silently.
func (b *Broker) response(c *client, m *ubus.Message, frame []byte) {
	id, ok := m.GetU32(ubus.AttrObjID)
	if !ok {
		return
	}
	if _, ok := m.GetU32(ubus.AttrStatus); m.Type == ubus.MsgStatus && !ok {
		return
	}
	if _, ok := m.Get(ubus.AttrData); m.Type == ubus.MsgData && !ok {
		return
	}
	obj := b.objects[id]
	if obj == nil || obj.client != c {
		return
	}
	dst := b.clients[m.Peer]
	if dst == nil {
		return
	}
	// The frame is ours (readLoop reads each into a buffer of its own,
	// and monitors got copies): relay it in place.
	binary.BigEndian.PutUint32(frame[4:], id)
	b.send(dst, frame)
}

// target returns the TARGET attribute (no size check in ubusd beyond the
// four bytes it reads).
func target(m *ubus.Message) (uint32, bool) {
	d, ok := m.Get(ubus.AttrTarget)
	if !ok || len(d) < 4 {
		return 0, false
	}
	return be32(d), true
}

// subscriber resolves the OBJID (the client's own subscriber object) and
// TARGET of a (un)subscribe request, or returns the status to answer.
func (b *Broker) subscriber(c *client, m *ubus.Message) (*object, uint32, int) {
	id, ok1 := m.GetU32(ubus.AttrObjID)
	tid, ok2 := target(m)
	if !ok1 || !ok2 {
		return nil, 0, int(ubus.StatusInvalidArgument)
	}
	obj := b.objects[id]
	if obj == nil {
		return nil, 0, int(ubus.StatusNotFound)
	}
	if obj.client != c {
		return nil, 0, int(ubus.StatusInvalidArgument)
	}
	return obj, tid, 0
}

func (b *Broker) subscribe(c *client, m *ubus.Message) int {
	obj, tid, status := b.subscriber(c, m)
	if status != 0 {
		return status
	}
	t := b.objects[tid]
	if t == nil || t.client == nil {
		return int(ubus.StatusNotFound)
	}
	if t.client == c {
		return int(ubus.StatusInvalidArgument)
	}
	if !t.hasPath && t.client.user != c.user && t.client.group != c.group {
		return int(ubus.StatusNotFound)
	}
	s := &subscription{subscriber: obj, target: t}
	first := len(t.subscribers) == 0
	t.subscribers = slices.Insert(t.subscribers, 0, s)
	obj.targets = slices.Insert(obj.targets, 0, s)
	if first {
		b.notifyActive(t)
	}
	return 0
}

func (b *Broker) unsubscribe(c *client, m *ubus.Message) int {
	obj, tid, status := b.subscriber(c, m)
	if status != 0 {
		return status
	}
	for _, s := range obj.targets {
		if s.target.id == tid {
			b.unsubscribe1(s)
			return 0
		}
	}
	return int(ubus.StatusNotFound)
}

func (b *Broker) unsubscribe1(s *subscription) {
	t := s.target
	t.subscribers = slices.DeleteFunc(t.subscribers, func(x *subscription) bool { return x == s })
	s.subscriber.targets = slices.DeleteFunc(s.subscriber.targets, func(x *subscription) bool { return x == s })
	if len(t.subscribers) == 0 {
		b.notifyActive(t)
	}
}

// notifyActive tells the owner of t whether it has subscribers.
func (b *Broker) notifyActive(t *object) {
	t.invokeSeq++
	f := newFrame(ubus.MsgNotify, t.invokeSeq, 0)
	f = blob.AppendU32(f, uint8(ubus.AttrObjID), t.id)
	f = blob.AppendU8(f, uint8(ubus.AttrActive), boolByte(len(t.subscribers) > 0))
	b.send(t.client, finish(f))
}

func (b *Broker) notify(c *client, m *ubus.Message) int {
	meth, ok1 := m.GetString(ubus.AttrMethod)
	id, ok2 := m.GetU32(ubus.AttrObjID)
	if !ok1 || !ok2 {
		return int(ubus.StatusInvalidArgument)
	}
	nr, _ := m.GetU8(ubus.AttrNoReply)
	obj := b.objects[id]
	if obj == nil {
		return int(ubus.StatusNotFound)
	}
	if obj.client != c {
		return int(ubus.StatusPermissionDenied)
	}
	if nr == 0 {
		f := reply(m, ubus.MsgStatus)
		f = blob.AppendU32(f, uint8(ubus.AttrObjID), id)
		f, off := blob.Begin(f)
		for _, s := range obj.subscribers {
			f = blob.AppendU32(f, 0, s.subscriber.id)
		}
		f = blob.End(f, off, uint8(ubus.AttrSubscribers), false)
		f = blob.AppendU32(f, uint8(ubus.AttrStatus), 0)
		b.send(c, finish(f))
	}
	data, hasData := m.Get(ubus.AttrData)
	for _, s := range obj.subscribers {
		b.forward(c, s.subscriber, m.Seq, meth, data, hasData, nr != 0)
	}
	return noReply
}
