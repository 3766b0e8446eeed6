package chart

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	texttemplate "text/template"

	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// fill executes a static file's Go template (delimiters [[ ]]) with the
// captured defaults: [[ v "serve.replicas" 2 ]] writes the default of
// serve.replicas as YAML for a key indented by 2 (a scalar on the key's
// line, a mapping or list on the lines below). Every captured default must
// be used, so that a value the render gives cannot go missing from
// values.yaml.
func (g *generator) fill(name string, data []byte) ([]byte, error) {
	used := map[string]bool{}
	funcs := texttemplate.FuncMap{
		"v": func(key string, indent int) (string, error) {
			val, ok := g.captured[key]
			if !ok {
				return "", fmt.Errorf("no default for %s in the render", key)
			}
			used[key] = true
			return yamlValue(val, indent)
		},
		// chartVersion is the appVersion (an image tag) without its v.
		"chartVersion": func() (string, error) {
			val, ok := g.captured["appVersion"].(string)
			if !ok {
				return "", fmt.Errorf("no image tag in the render")
			}
			return strings.TrimPrefix(val, "v"), nil
		},
	}
	t, err := texttemplate.New(name).Delims("[[", "]]").Funcs(funcs).Option("missingkey=error").Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("chart: %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, nil); err != nil {
		return nil, fmt.Errorf("chart: %s: %w", name, err)
	}
	g.used = append(g.used, slices.Collect(maps.Keys(used))...)
	return b.Bytes(), nil
}

// checkUsed fails when a captured default is in no static file.
func (g *generator) checkUsed() error {
	for _, k := range slices.Sorted(maps.Keys(g.captured)) {
		if !slices.Contains(g.used, k) {
			return fmt.Errorf("chart: the render gives a default for %s, which values.yaml does not write", k)
		}
	}
	return nil
}

// yamlValue writes v after "key:" at indent: " scalar", or the block on
// the next lines, indented by indent+2.
func yamlValue(v any, indent int) (string, error) {
	data, err := kyaml.Marshal(v)
	if err != nil {
		return "", err
	}
	s := strings.TrimSuffix(string(data), "\n")
	switch v.(type) {
	case map[string]any, []any:
		if s == "{}" || s == "[]" {
			return " " + s, nil
		}
		pad := strings.Repeat(" ", indent+2)
		return "\n" + pad + strings.ReplaceAll(s, "\n", "\n"+pad), nil
	}
	return " " + s, nil
}
