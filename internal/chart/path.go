package chart

import (
	"fmt"
	"strconv"
	"strings"

	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// A path names nodes of an object, one segment per level:
//
//	key        the value of a mapping's key
//	[k=v]      the list items that are mappings with k: v
//	[=v]       the scalar list items equal to v; [=v*] those starting with v
//	[3]        the list item at index 3
//	*          every list item
//
// A path that matches nothing is an error, so that a change of deploy/
// that moves a field fails `make generate` instead of leaving the field
// out of the chart.
type path []string

func (p path) String() string { return strings.Join(p, ".") }

// A place is one node a path found: the node, and where it sits (a mapping
// and its key's index in Content, or a list and the item's index).
type place struct {
	parent *kyaml.Node
	// index is the item's index in a list's Content, or the value's index
	// in a mapping's Content (its key is at index-1).
	index int
	node  *kyaml.Node
}

// key is the mapping key of a place in a mapping, "" in a list.
func (pl place) key() string {
	if pl.parent.Kind == kyaml.MappingNode {
		return pl.parent.Content[pl.index-1].Value
	}
	return ""
}

// find returns every place p names under root.
func find(root *kyaml.Node, p path) ([]place, error) {
	current := []place{{node: root}}
	for i, seg := range p {
		var next []place
		for _, pl := range current {
			found, err := step(pl.node, seg)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", path(p[:i+1]), err)
			}
			next = append(next, found...)
		}
		if len(next) == 0 {
			return nil, fmt.Errorf("%s: no such field", path(p[:i+1]))
		}
		current = next
	}
	return current, nil
}

func step(n *kyaml.Node, seg string) ([]place, error) {
	switch {
	case seg == "*":
		if n.Kind != kyaml.SequenceNode {
			return nil, fmt.Errorf("* on a %s, want a list", kindName(n))
		}
		var out []place
		for i, c := range n.Content {
			out = append(out, place{parent: n, index: i, node: c})
		}
		return out, nil
	case strings.HasPrefix(seg, "[") && strings.HasSuffix(seg, "]"):
		if n.Kind != kyaml.SequenceNode {
			return nil, fmt.Errorf("%s on a %s, want a list", seg, kindName(n))
		}
		inner := seg[1 : len(seg)-1]
		if idx, err := strconv.Atoi(inner); err == nil {
			if idx < 0 || idx >= len(n.Content) {
				return nil, nil
			}
			return []place{{parent: n, index: idx, node: n.Content[idx]}}, nil
		}
		k, v, ok := strings.Cut(inner, "=")
		if !ok {
			return nil, fmt.Errorf("bad segment %s", seg)
		}
		var out []place
		for i, c := range n.Content {
			if k == "" {
				if c.Kind == kyaml.ScalarNode && matchValue(c.Value, v) {
					out = append(out, place{parent: n, index: i, node: c})
				}
				continue
			}
			if c.Kind != kyaml.MappingNode {
				continue
			}
			if f := mapValue(c, k); f != nil && f.Kind == kyaml.ScalarNode && matchValue(f.Value, v) {
				out = append(out, place{parent: n, index: i, node: c})
			}
		}
		return out, nil
	default:
		if n.Kind != kyaml.MappingNode {
			return nil, fmt.Errorf("field %s of a %s, want a mapping", seg, kindName(n))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == seg {
				return []place{{parent: n, index: i + 1, node: n.Content[i+1]}}, nil
			}
		}
		return nil, nil
	}
}

func matchValue(value, pattern string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(value, prefix)
	}
	return value == pattern
}

func mapValue(m *kyaml.Node, key string) *kyaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func kindName(n *kyaml.Node) string {
	switch n.Kind {
	case kyaml.MappingNode:
		return "mapping"
	case kyaml.SequenceNode:
		return "list"
	case kyaml.ScalarNode:
		return "scalar"
	}
	return "node"
}

// scalar is a plain string node.
func scalar(v string) *kyaml.Node {
	return &kyaml.Node{Kind: kyaml.ScalarNode, Tag: "!!str", Value: v}
}

// ensureMapping returns the mapping at key of m, adding an empty one.
func ensureMapping(m *kyaml.Node, key string) *kyaml.Node {
	if v := mapValue(m, key); v != nil {
		return v
	}
	v := &kyaml.Node{Kind: kyaml.MappingNode, Tag: "!!map"}
	m.Content = append(m.Content, scalar(key), v)
	return v
}
