// Command hello prints a fixed line; TestBuild builds and runs it.
package main

import "fmt"

func main() { fmt.Println("hello from postfixtest") }
