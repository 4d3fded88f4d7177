// Package archtest holds the tests of the module's import rules: which of
// our packages may depend on which. It has no code of its own.
package archtest
