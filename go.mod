module github.com/mapdrop/mapdrop

go 1.26.8

require (
	github.com/emersion/go-maildir v0.6.0
	github.com/fsnotify/fsnotify v1.10.1
	github.com/hashicorp/go-memdb v1.3.5
	github.com/migadu/go-sieve v1.1.2
	golang.org/x/sys v0.50.0
)

require (
	github.com/emersion/go-message v0.18.2 // indirect
	github.com/hashicorp/go-immutable-radix v1.3.1 // indirect
	github.com/hashicorp/golang-lru v0.5.4 // indirect
	golang.org/x/text v0.14.0 // indirect
	rsc.io/binaryregexp v0.2.0 // indirect
)
