// Package config reads /etc/config/mwan3: the UCI file format as OpenWrt's
// libuci reads it (ParseUCI), and the mwan3 model built from it (Load) with
// legacy mwan3's defaults, value ranges and interface ids.
//
// Validation has two severities so that every configuration legacy mwan3
// runs still runs. Errors are what makes the file unreadable (syntax, bytes
// UCI rejects) or the whole policy impossible (a mark mask too small for
// any interface); a daemon given errors refuses the configuration. Anything
// else is a warning: the offending option is defaulted or the section
// skipped exactly as legacy does, and the message says so. Every message is
// "file:line: section 'name': what is wrong (what was done instead)",
// pointing at the option's line, or the section's when the option is
// missing; all problems are reported at once.
//
// The package is pure: no kernel calls, no globals, safe for concurrent use
// of distinct values. Other packages never import it except the daemon,
// which converts the model into their own input types.
package config
