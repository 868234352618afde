// Command hello prints a fixed line; TestBuildInto builds and runs it.
package main

import "fmt"

func main() { fmt.Println("hello from testkit") }
