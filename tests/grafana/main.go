// Checks a Grafana dashboard with Grafana's own types (grafana-foundation-sdk): a strict
// unmarshal, which refuses a field Grafana does not know (a misspelt key) and reports a
// required field the file leaves out, then the SDK's own validation.
//
// Grafana fills some required fields with defaults when it loads a dashboard; a file may
// leave them out. Those, and only those, are let through (DEFAULTED below, each with the
// value Grafana gives it); anything else fails.
//
//	dashboard-check FILE
package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// DEFAULTED: required fields Grafana fills when they are left out.
var DEFAULTED = []*regexp.Regexp{
	// A time series' legend calculations: [] (none).
	regexp.MustCompile(`^panels\[\d+\]\.options\.legend\.calcs$`),
	// A stat panel's layout: justifyMode "auto", wideLayout true, orientation "auto",
	// showPercentChange false, percentChangeColorMode "standard".
	regexp.MustCompile(`^panels\[\d+\]\.options\.(justifyMode|wideLayout|orientation|showPercentChange|percentChangeColorMode)$`),
	// A template variable's current selection: taken from its query or first option.
	regexp.MustCompile(`^templating\.list\[\d+\]\.current\.(text|value)$`),
}

const missing = ": required field is missing from input"

func main() {
	plugins.RegisterDefaultPlugins()
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var d dashboard.Dashboard
	var problems []string
	if err := d.UnmarshalJSONStrict(raw); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			if line != "" && !defaulted(line) {
				problems = append(problems, line)
			}
		}
	}
	if err := d.Validate(); err != nil {
		problems = append(problems, "validate: "+err.Error())
	}
	if len(problems) > 0 {
		fmt.Fprintf(os.Stderr, "%s:\n  %s\n", os.Args[1], strings.Join(problems, "\n  "))
		os.Exit(1)
	}
	fmt.Printf("%s: %d panels, strict unmarshal and validation ok\n", os.Args[1], len(d.Panels))
}

func defaulted(line string) bool {
	path, found := strings.CutSuffix(line, missing)
	if !found {
		return false
	}
	for _, pattern := range DEFAULTED {
		if pattern.MatchString(path) {
			return true
		}
	}
	return false
}
