package main

import (
	"context"
	"fmt"

	"matrixas/apidoc"
)

// runOpenAPI prints the API's OpenAPI document, for client generators that work
// offline; it needs no configuration and no database.
func runOpenAPI(ctx context.Context, env *cliEnv, args []string) error {
	c := find("openapi")
	fs := c.flags(env)
	format := fs.String("format", "json", "json or yaml")
	if _, err := c.parse(env, fs, args, 0); err != nil {
		return helpOK(err)
	}
	switch *format {
	case "json":
		env.stdout.Write(apidoc.JSON())
	case "yaml":
		env.stdout.Write(apidoc.YAML())
	default:
		fmt.Fprintf(env.stderr, "--format: %q is not json or yaml\n\n", *format)
		fs.Usage()
		return exitUsage
	}
	return nil
}

// commandHelp is 'matrixas help COMMAND': the command's own --help.
func commandHelp(ctx context.Context, env *cliEnv, args []string) error {
	if len(args) != 1 {
		fmt.Fprintln(env.stderr, "Usage: matrixas help [COMMAND]")
		return exitUsage
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, []string{"--help"})
		}
	}
	fmt.Fprintf(env.stderr, "unknown command %q\n\n", args[0])
	usage(env.stderr)
	return exitUsage
}
