//go:build !linux

package main

// watchBackends are the directory watches the tests run fileWatcher on.
func watchBackends() map[string]func() (dirWatcher, error) {
	return map[string]func() (dirWatcher, error){"fsnotify": newFsnotifyWatcher}
}
