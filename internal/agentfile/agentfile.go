// Package agentfile loads Agent definitions from YAML files for local mode
// (`flint up -f PATH`). It decodes strictly, applies the same defaults and
// validation as the cluster, and reports every problem at once, each naming
// the file, the YAML document and the field.
package agentfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// Loaded is one agent read from a file.
type Loaded struct {
	// Agent is defaulted and valid for local mode (it has a command).
	Agent *v1alpha1.Agent
	// File is the file that defined the agent, as found from the path given
	// to Load (relative when that path was relative), for messages.
	File string
	// Dir is the absolute directory of File. The local runtime runs the
	// agent's command with this working directory, so `command: ["go",
	// "run", "."]` or `["./run.sh"]` next to agent.yaml work from anywhere.
	// Flint does no other path rewriting.
	Dir string
}

// Problem is one thing wrong with the agent files.
type Problem struct {
	// File is the file (or the path given to Load) the problem is in.
	File string
	// Document is the 1-based index of the YAML document within File, or 0
	// when the problem concerns the whole file.
	Document int
	// Agent is "namespace/name" when the document got that far, else "".
	Agent string
	// Err says what is wrong. For validation problems it is a *field.Error.
	Err error
}

func (p Problem) Error() string {
	var where string
	switch {
	case p.Document > 0 && p.Agent != "":
		where = fmt.Sprintf(" (document %d, agent %s)", p.Document, p.Agent)
	case p.Document > 0:
		where = fmt.Sprintf(" (document %d)", p.Document)
	}
	return p.File + where + ": " + p.Err.Error()
}

func (p Problem) Unwrap() error { return p.Err }

// Error is every problem Load found, one per line.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As look at each problem.
func (e *Error) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// skipDirs are directory names never searched for agent files: fixtures and
// third-party trees hold YAML that is not ours.
var skipDirs = map[string]bool{"testdata": true, "node_modules": true, "vendor": true}

// Load reads the agents defined at path: one file (any name), or every
// *.yaml and *.yml file under a directory, recursively in lexical (WalkDir) order,
// skipping hidden files and directories and testdata, node_modules and
// vendor directories. Files may hold several documents separated by `---`;
// empty documents are ignored.
//
// Every document of a file named directly must be an Agent (apiVersion
// flint.dev/v1alpha1, kind Agent) without unknown fields. A file found in a
// directory that holds nothing that looks like an Agent (a docker-compose.yml,
// a Helm chart) is skipped; one that does (a typo in kind, say) is checked
// as strictly as a named file. Each agent is defaulted, then validated for
// local mode (a command is required), and namespace/name must be unique
// across all files. On any problem Load returns nil and an *Error listing
// all of them; finding no agent at all is a problem too.
func Load(path string) ([]Loaded, error) {
	set, err := LoadAll([]string{path})
	if err != nil {
		return nil, err
	}
	return set.Agents, nil
}

// Set is what LoadAll found.
type Set struct {
	Agents []Loaded
	// Skipped are the YAML files found in directories that define no Agent.
	Skipped []string
}

// LoadAll loads every path as Load does, as one set: an agent defined in
// two of them is a problem.
func LoadAll(paths []string) (Set, error) {
	var set Set
	var problems []Problem
	seen := map[string]Problem{} // namespace/name -> where it was first defined
	for _, path := range paths {
		files, explicit, probs := findFiles(path)
		problems = append(problems, probs...)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				problems = append(problems, Problem{File: file, Err: unwrapPath(err)})
				continue
			}
			if !explicit && !mentionsAgent(data) {
				set.Skipped = append(set.Skipped, file)
				continue
			}
			dir, err := filepath.Abs(filepath.Dir(file))
			if err != nil {
				problems = append(problems, Problem{File: file, Err: err})
				continue
			}
			agents, probs := decodeFile(file, data)
			problems = append(problems, probs...)
			for _, d := range agents {
				key := d.agent.Namespace + "/" + d.agent.Name
				if first, dup := seen[key]; dup {
					problems = append(problems, Problem{File: file, Document: d.index, Agent: key,
						Err: fmt.Errorf("agent %s is defined twice: first in %s (document %d)", key, first.File, first.Document)})
					continue
				}
				seen[key] = Problem{File: file, Document: d.index}
				set.Agents = append(set.Agents, Loaded{Agent: d.agent, File: file, Dir: dir})
			}
		}
	}
	if len(problems) == 0 && len(set.Agents) == 0 {
		where := strings.Join(paths, ", ")
		msg := "no agents defined: expected documents with apiVersion: flint.dev/v1alpha1 and kind: Agent"
		if len(set.Skipped) > 0 {
			msg = fmt.Sprintf("no agents defined: %d YAML files, none with apiVersion: flint.dev/v1alpha1 and kind: Agent", len(set.Skipped))
		}
		problems = append(problems, Problem{File: where, Err: errors.New(msg)})
	}
	if len(problems) > 0 {
		return Set{}, &Error{Problems: problems}
	}
	return set, nil
}

// findFiles lists the agent files at path; explicit when path is a file.
func findFiles(path string) (files []string, explicit bool, _ []Problem) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, false, []Problem{{File: path, Err: unwrapPath(err)}}
	}
	if !info.IsDir() {
		return []string{path}, true, nil
	}
	var problems []Problem
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			problems = append(problems, Problem{File: p, Err: unwrapPath(err)})
			return nil
		}
		name := d.Name()
		if p == path {
			return nil
		}
		if d.IsDir() {
			if strings.HasPrefix(name, ".") || skipDirs[name] {
				return filepath.SkipDir
			}
			return nil
		}
		ext := strings.ToLower(filepath.Ext(name))
		if !strings.HasPrefix(name, ".") && (ext == ".yaml" || ext == ".yml") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		problems = append(problems, Problem{File: path, Err: err})
	}
	if len(files) == 0 && len(problems) == 0 {
		problems = append(problems, Problem{File: path, Err: errors.New("no agent files (*.yaml, *.yml) in this directory or below")})
	}
	return files, false, problems
}

// unwrapPath drops the path from an *fs.PathError, which Problem already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
