// Package certs is the engine of the kubectl mesh certs commands. It owns
// what they do to files and clusters:
//
//   - root: a new root's files; --rotate, the previous root kept beside a
//     new one and the transition bundle trusting both, copied to every
//     cluster directory; --finish-rotation, dropping them once every
//     cluster issues from the new root (root.go);
//   - intermediate and rotate: the refusals checked before anything is
//     written, then one intermediate per cluster signed by the root, and
//     its files (intermediate.go);
//   - install: each cluster's cacerts read and a plan made per cluster,
//     refusals before any cluster is written, every Secret to be replaced
//     backed up to a 0600 file, the writes, istiod's and the gateways'
//     restart, and which clusters were written when one fails (install.go,
//     install_write.go, restart.go);
//   - verify: the reports of the cluster directories of a --dir and of the
//     clusters' cacerts Secrets, and what they add up to (verify.go).
//
// pkg/pki does the cryptography and the X.509 checks. The engine takes
// requests of parsed values (cli.DryRun, durations, targets) and clients
// from a cli.Factory, and answers with results and reports; it parses no
// flag and prints no table (install's messages go to the io.Writer its
// request names). It may import pkg/cli, pkg/pki, pkg/rules and client-go;
// never pkg/plugin, which holds the commands, nor the webhook packages.
package certs
