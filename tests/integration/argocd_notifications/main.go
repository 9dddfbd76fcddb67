// Evaluates ArgoCD notification triggers and templates as argoproj/notifications-engine does
// (pkg/triggers/service.go: expr.Compile / expr.Run of `when` and `oncePer`;
// pkg/templates/service.go: text/template with sprig.TxtFuncMap() minus env and expandenv),
// with the same library versions as that engine's go.mod. Used by
// tests/integration/test_notifications_argocd.py.
//
// stdin:  {"triggers": {"name": [{"when": "...", "oncePer": "..."}]},
//
//	"templates": {"name": "go template text"}, "vars": {"sample": {"app": {...}, ...}}}
//
// stdout: {"sample": {"triggers": {"name": [{"triggered": true, "oncePer": "..."}]},
//
//	"templates": {"name": "rendered text"}}}
//
// A compile or render error is printed to stderr and the exit status is 1.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"github.com/expr-lang/expr"
)

type condition struct {
	When    string `json:"when"`
	OncePer string `json:"oncePer"`
}

type input struct {
	Triggers  map[string][]condition    `json:"triggers"`
	Templates map[string]string         `json:"templates"`
	Vars      map[string]map[string]any `json:"vars"`
}

type result struct {
	Triggered bool   `json:"triggered"`
	OncePer   string `json:"oncePer"`
}

type sampleResult struct {
	Triggers  map[string][]result `json:"triggers"`
	Templates map[string]string   `json:"templates"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fail("input: %v", err)
	}
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	templates := map[string]*template.Template{}
	for name, text := range in.Templates {
		t, err := template.New(name).Funcs(funcs).Parse(text)
		if err != nil {
			fail("template %s: %v", name, err)
		}
		templates[name] = t
	}
	out := map[string]sampleResult{}
	for sample, vars := range in.Vars {
		res := sampleResult{Triggers: map[string][]result{}, Templates: map[string]string{}}
		for name, conditions := range in.Triggers {
			for i, c := range conditions {
				when := c.When
				if when == "" {
					when = "false"
				}
				prog, err := expr.Compile(when)
				if err != nil {
					fail("trigger %s[%d] when: %v", name, i, err)
				}
				val, err := expr.Run(prog, vars)
				if err != nil {
					fail("trigger %s[%d] when on %s: %v", name, i, sample, err)
				}
				triggered, _ := val.(bool)
				r := result{Triggered: triggered}
				if triggered && c.OncePer != "" {
					once, err := expr.Compile(c.OncePer)
					if err != nil {
						fail("trigger %s[%d] oncePer: %v", name, i, err)
					}
					v, err := expr.Run(once, vars)
					if err != nil {
						fail("trigger %s[%d] oncePer on %s: %v", name, i, sample, err)
					}
					r.OncePer = fmt.Sprintf("%v", v)
				}
				res.Triggers[name] = append(res.Triggers[name], r)
			}
		}
		for name, t := range templates {
			var buf bytes.Buffer
			if err := t.Execute(&buf, vars); err != nil {
				fail("template %s on %s: %v", name, sample, err)
			}
			res.Templates[name] = buf.String()
		}
		out[sample] = res
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail("output: %v", err)
	}
}
