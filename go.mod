module github.com/mapdrop/mapdrop

go 1.26.8

require (
	github.com/emersion/go-maildir v0.6.0
	github.com/fsnotify/fsnotify v1.10.1
	github.com/hashicorp/go-memdb v1.3.5
	golang.org/x/sys v0.50.0
)

require (
	github.com/hashicorp/go-immutable-radix v1.3.1 // indirect
	github.com/hashicorp/golang-lru v0.5.4 // indirect
)
