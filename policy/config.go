package policy

import "time"

// RoleSpec is one entry of the roles: section of config.yaml.
type RoleSpec struct {
	Inherits     []string `yaml:"inherits"`
	Capabilities []string `yaml:"capabilities"`
}

// RouteSpec is one entry of the routes: section of config.yaml.
type RouteSpec struct {
	// Name identifies the route in logs and metrics; required and unique.
	Name string `yaml:"name"`
	// Path is the pattern matched against the normalised request path.
	Path string `yaml:"path"`
	// Methods lists the allowed methods, case-insensitively; empty allows
	// every method.
	Methods []string `yaml:"methods"`
	// Upstream names the upstream pool; its existence is checked by the
	// package that owns upstreams.
	Upstream string `yaml:"upstream"`
	// Auth is "required" (the default when empty), "optional" or "none".
	Auth string `yaml:"auth"`
	// Roles are alternatives: any one of them suffices.
	Roles []string `yaml:"roles"`
	// Capabilities are all required.
	Capabilities []string `yaml:"capabilities"`
	// StripPrefix is removed from the path sent upstream.
	StripPrefix string `yaml:"strip_prefix"`
	// AddPrefix is prepended to the path sent upstream, after stripping.
	AddPrefix string `yaml:"add_prefix"`
	// Timeout overrides the upstream's timeout when positive.
	Timeout time.Duration `yaml:"timeout"`
}

// TestSpec is one entry of the tests: section of config.yaml: a request and
// the decision the policy is expected to make for it.
type TestSpec struct {
	Name   string `yaml:"name"`
	Method string `yaml:"method"`
	Path   string `yaml:"path"`
	// Roles are the roles of the request's token; empty means an anonymous
	// request without a token.
	Roles []string `yaml:"roles"`
	// Expect is one of allow, 401, 403, 404 or 405.
	Expect string `yaml:"expect"`
}

// Config is the policy part of config.yaml, composed by the caller from the
// top-level keys roles:, routes: and tests:.
type Config struct {
	Roles  map[string]RoleSpec
	Routes []RouteSpec
	Tests  []TestSpec
}

// ConfigError is a validation finding at a path in config.yaml, relative to
// the file's root, such as "routes[3].methods[1]" or "roles.editor.inherits[0]".
// The package that reads the file maps the path to a line and column.
type ConfigError struct {
	Path string
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// ConfigPath returns the path of the offending value in config.yaml.
func (e *ConfigError) ConfigPath() string { return e.Path }
