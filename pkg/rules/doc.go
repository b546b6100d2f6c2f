// Package rules owns the rules of Istio's `.global` multicluster model: the
// form of a remote host (`<service>.<namespace>.global`), the class-E VIP
// space a ServiceEntry address must come from, the SNI-aware gateway port,
// the defaults a remote ServiceEntry needs, and field-path validation helpers
// that report each violation with the way to fix it.
//
// It also owns the shape of a ServiceEntry as it is read (ServiceEntry, with
// the one number coercion, PortNumber, and the annotations export writes):
// builders, the webhook's validator, defaulter and index, the VIP repair
// loop and status all read entries through it.
//
// It is the one place these rules are written: the kubectl plugin and the
// admission webhook both import it, so the CLI never writes an object the
// webhook would refuse. It imports only the standard library and
// apimachinery's validation helpers, never another package of this module.
package rules
