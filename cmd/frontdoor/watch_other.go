//go:build !linux

package main

// newDirWatcher is the directory watch that frontdoor uses where there is
// no inotify.
func newDirWatcher() (dirWatcher, error) { return newFsnotifyWatcher() }
