// Package route is the engine of `kubectl mesh route`: it reads what a
// cluster runs and what exports into it provide, plans the VirtualService,
// the local DestinationRule subsets its routes need and the locality
// policies with the pure builders of pkg/routing and pkg/builders, and
// writes them through cli.Writer, one table row per object. The command
// itself (flags, completion, printing) is in pkg/plugin.
//
// It may import pkg/cli, pkg/rules, pkg/builders, pkg/routing and
// client-go; nothing of pkg/plugin, pkg/webhook or the other engines.
package route
