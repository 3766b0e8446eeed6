package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/leakguard/leakguard/dashboards"
	"github.com/leakguard/leakguard/internal/chart"
	"github.com/leakguard/leakguard/internal/cli"
	"github.com/leakguard/leakguard/rules"
	"github.com/spf13/pflag"
)

func runGenerate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var chartFrom string
	p, outDir, err := generateParamsChart(args, stderr, &chartFrom)
	if err != nil {
		return err
	}
	files, err := generatedFiles(p)
	if err != nil {
		return err
	}
	if chartFrom != "" {
		// The chart is generated from the kustomize render of chartFrom
		// with the files just generated written over it, so that it holds
		// the same rules and dashboards.
		charted, err := chart.Files(chartFrom, files)
		if err != nil {
			return err
		}
		for path, data := range charted {
			if _, dup := files[path]; dup {
				return fmt.Errorf("two generators write %s", path)
			}
			files[path] = data
		}
	}
	return writeFiles(outDir, files, stdout)
}

// generateParams reads generate's command line: the defaults, then the
// --params file, then the flags.
func generateParams(args []string, stderr io.Writer) (rules.Params, string, error) {
	return generateParamsChart(args, stderr, nil)
}

// generateParamsChart is generateParams that also reads --chart-from into
// chartFrom (when not nil).
func generateParamsChart(args []string, stderr io.Writer, chartFrom *string) (rules.Params, string, error) {
	p := rules.DefaultParams()
	fs, outDir, paramsFile := generateFlags(&p, stderr)
	if chartFrom == nil {
		chartFrom = new(string)
	}
	fs.StringVar(chartFrom, "chart-from", "", "also write the Helm chart ("+chart.Dir+" under --out-dir) from the kustomizations of this deploy `DIR` (make generate: deploy); empty: no chart")
	if err := parseFlags(fs, args); err != nil {
		return p, "", err
	}
	if *paramsFile != "" {
		// The file sets the base; the command line is then parsed again over
		// it, so that each flag applies exactly as given (a repeated label
		// flag adds one label, name= removes one) and wins over the file.
		base := rules.DefaultParams()
		if err := rules.LoadParamsFile(*paramsFile, &base); err != nil {
			return p, "", err
		}
		again, _, _ := generateFlags(&base, io.Discard)
		again.String("chart-from", "", "")
		if err := parseFlags(again, args); err != nil {
			return p, "", err
		}
		p = base
	}
	return p, *outDir, nil
}

// generateFlags is generate's flag set, writing the parameters into p.
func generateFlags(p *rules.Params, stderr io.Writer) (fs *pflag.FlagSet, outDir, paramsFile *string) {
	fs = cli.NewFlagSet("generate", stderr)
	outDir = fs.String("out-dir", "deploy", "directory to write the generated files into")
	paramsFile = fs.String("params", "", "YAML `file` of generator parameters (field names as in the flag list's YAML names); flags given on the command line win over it")
	p.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `usage: leakguard generate [flags]

Write the Prometheus rule file (%s, also for Thanos Ruler and
vmalert), the PrometheusRule object (%s), the Mimir or Cortex
ruler namespace (%s, for mimirtool rules sync) and the Grafana
dashboards under --out-dir; with --chart-from, the Helm chart too.
Every threshold, window, for duration and selector is a flag, or a field
of the YAML file given with --params (camelCase names, e.g. oomHorizon: 3h).

flags:
`, rules.RuleFilePath, rules.PrometheusRulePath, rules.MimirRulesPath)
		fs.PrintDefaults()
	}
	return fs, outDir, paramsFile
}

// generatedFiles collects every generated file, keyed by its path under the
// deploy directory, after checking the runbook base URL.
func generatedFiles(p rules.Params) (map[string][]byte, error) {
	// Every alert's runbook_url and the dashboards' links start with it:
	// refused before anything is rendered, let alone written.
	if err := checkURLFlag("runbook-base-url", p.RunbookBaseURL); err != nil {
		return nil, err
	}
	files, err := rules.Files(p)
	if err != nil {
		return nil, err
	}
	boards, err := dashboards.Files(p)
	if err != nil {
		return nil, fmt.Errorf("dashboards: %w", err)
	}
	for path, data := range boards {
		if _, dup := files[path]; dup {
			return nil, fmt.Errorf("two generators write %s", path)
		}
		files[path] = data
	}
	return files, nil
}

func writeFiles(dir string, files map[string][]byte, stdout io.Writer) error {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, rel := range paths {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, files[rel], 0o644); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "wrote", path)
	}
	return nil
}
