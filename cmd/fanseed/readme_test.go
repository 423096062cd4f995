package main

import (
	"os"
	"strings"
	"testing"
)

// The README's configuration table documents every variable `fanseed help` lists.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range envVars {
		if !strings.Contains(string(b), "| `"+v.Name+"` |") {
			t.Errorf("README's configuration table lacks %s", v.Name)
		}
	}
}
