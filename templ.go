package main

// The views' Go code is generated from views/*.templ and committed; the test command
// fails when generating would change it.
//go:generate go tool templ generate
