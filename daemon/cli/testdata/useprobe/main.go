// Command useprobe is the program the CLI's end-to-end test runs with
// `mwan3 use`, built statically (CGO_ENABLED=0) so that no LD_PRELOAD shim
// could reach it:
//
//	useprobe tcp ADDR:PORT   print the source the testbed's echo server saw
//	useprobe icmp ADDR       send one ICMP echo request, exit 0 on a reply
//	useprobe exit N          exit with status N
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: useprobe tcp|icmp|exit ARG")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "tcp":
		err = echo(os.Args[2])
	case "icmp":
		err = ping(os.Args[2])
	case "exit":
		n, _ := strconv.Atoi(os.Args[2])
		os.Exit(n)
	default:
		err = fmt.Errorf("unknown mode %s", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "useprobe:", err)
		os.Exit(1)
	}
}

func echo(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	fmt.Print(line)
	return nil
}

func ping(addr string) error {
	dst, err := net.ResolveIPAddr("ip4", addr)
	if err != nil {
		return err
	}
	c, err := net.ListenPacket("ip4:icmp", "0.0.0.0")
	if err != nil {
		return err
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	msg := []byte{8, 0, 0, 0, byte(id >> 8), byte(id), 0, 1, 'm', 'w', 'a', 'n', '3', 'd'}
	sum := 0
	for i := 0; i < len(msg); i += 2 {
		sum += int(msg[i])<<8 | int(msg[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	msg[2], msg[3] = byte(^sum>>8), byte(^sum)
	if _, err := c.WriteTo(msg, dst); err != nil {
		return err
	}
	if err := c.SetReadDeadline(time.Now().Add(3 * time.Second)); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		if n >= 8 && buf[0] == 0 && int(buf[4])<<8|int(buf[5]) == id && from.String() == dst.String() {
			fmt.Printf("reply from %s\n", from)
			return nil
		}
	}
}
