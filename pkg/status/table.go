package status

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/kubectl-mesh/kubectl-mesh/pkg/mesh"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/pki"
	"github.com/kubectl-mesh/kubectl-mesh/pkg/rules"
)

// PrintTable writes the report as status's tables: clusters, links, the
// mesh's remote secrets, routes, then warnings and problems. It is what
// status prints when -o is left out.
func PrintTable(out io.Writer, rep *mesh.Report) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CLUSTER\tROOT\tROOTS MATCH\tINTERMEDIATE EXPIRES\tISTIOCOREDNS\tGLOBAL DNS\tGATEWAY\tMESH-WEBHOOK\tEXPORTED")
	for _, cs := range rep.Clusters {
		root, expires := "none", "-"
		if len(cs.RootFingerprints) > 0 {
			root = pki.Short(cs.RootFingerprints[0])
		} else if cs.CertsError != "" {
			root = "none (no cacerts)"
		}
		if cs.IntermediateExpires != nil {
			expires = cs.IntermediateExpires.Format("2006-01-02")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", cs.Context, root, yesNo(cs.RootsMatch), expires,
			orDash(cs.IstioCoreDNS), dnsCell(cs), orDash(cs.Gateway), cs.Webhook, len(cs.Exported))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := printLinks(out, rep.Links); err != nil {
		return err
	}
	if err := printMultiPrimary(out, rep); err != nil {
		return err
	}
	if len(rep.Routes) > 0 {
		fmt.Fprintln(out)
		if err := printRoutes(out, rep.Routes); err != nil {
			return err
		}
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintln(out)
		printProblems(out, "WARNINGS", rep.Warnings)
	}
	fmt.Fprintln(out)
	if len(rep.Problems) == 0 {
		_, err := fmt.Fprintln(out, "No problems found.")
		return err
	}
	printProblems(out, "PROBLEMS", rep.Problems)
	return nil
}

// printLinks is the LINK table, when there are links.
func printLinks(out io.Writer, links []mesh.LinkStatus) error {
	if len(links) == 0 {
		return nil
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "LINK\tGATEWAY\tGATEWAY NOW\tREACHABLE\tROOTS MATCH\tMULTI-PRIMARY")
	for _, l := range links {
		match := "unknown"
		if l.RootsMatch != nil {
			match = yesNo(*l.RootsMatch)
		}
		fmt.Fprintf(w, "%s -> %s\t%s\t%s\t%s\t%s\t%s\n", l.From, l.To, l.Gateway, orDash(l.GatewayNow), yesNo(l.Reachable), match, yesNo(l.MultiPrimar))
	}
	return w.Flush()
}

func printProblems(out io.Writer, title string, ps []mesh.Problem) {
	fmt.Fprintf(out, "%s (%d)\n", title, len(ps))
	for _, p := range ps {
		fmt.Fprintf(out, "- %s: %s [%s]: %s\n    fix: %s\n", p.Cluster, p.Object, p.Kind, p.Message, p.Fix)
	}
}

func dnsCell(cs *mesh.ClusterStatus) string {
	switch {
	case cs.DNSError != "":
		return "unknown"
	case cs.DNSProxy:
		return "dns proxy"
	case cs.GlobalDNS:
		return "forwarded"
	case len(cs.GlobalForwarding) > 0:
		return "to " + strings.Join(cs.GlobalForwarding, ",")
	}
	return "no"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printMultiPrimary is the MESH and REMOTE SECRETS tables, when a cluster
// has remote secrets.
func printMultiPrimary(out io.Writer, rep *mesh.Report) error {
	if !slices.ContainsFunc(rep.Clusters, func(cs *mesh.ClusterStatus) bool { return len(cs.RemoteSecrets) > 0 }) {
		return nil
	}
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CLUSTER\tCLUSTER NAME\tMESH ID\tNETWORK")
	for _, cs := range rep.Clusters {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", cs.Context, orDash(cs.ClusterName), orDash(cs.MeshID), orDash(cs.Network))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "REMOTE SECRET\tFOR\tPEER\tSERVER\tANSWERS\tSERVICES\tENDPOINTSLICES\tSECRETS\tTOKEN EXPIRES")
	for _, cs := range rep.Clusters {
		for _, rs := range cs.RemoteSecrets {
			exp := "never"
			if rs.Expires != nil {
				exp = rs.Expires.Format("2006-01-02")
			}
			answers := yesNo(rs.Answers)
			if rs.Unauthorized {
				answers = "rejects token"
			}
			secrets := "no"
			if rs.ReadSecrets {
				secrets = "reads (cacerts too)"
			}
			fmt.Fprintf(w, "%s: %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cs.Context, rs.Secret, rs.ClusterName, orDash(rs.Peer), orDash(rs.Server), answers,
				yesNo(rs.ListServices), yesNo(rs.ListEndpointSlices), secrets, exp)
		}
	}
	return w.Flush()
}

// printRoutes is the ROUTES table: what each caller sends, through which
// gateway, and the source Service it lands on.
func printRoutes(out io.Writer, routes []mesh.Route) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CALLER\tHOST\tPORT\tSUBSET\tSNI\tVIA\tLANDS ON\tOK")
	for _, r := range routes {
		sni := r.SNI
		if sni == "" {
			sni = "none (plain text)"
		}
		via := r.Source + " " + r.Endpoint
		if r.Gateway != "" {
			via += " (" + r.Gateway + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", r.Caller, r.Host, r.Port, orDash(r.Subset), sni, via, landsOn(r), routeOK(r.Status))
	}
	return w.Flush()
}

func landsOn(r mesh.Route) string {
	switch {
	case r.Status == mesh.RouteUnchecked:
		return "not checked"
	case r.LandsOn == "":
		return "nowhere"
	}
	sni, err := rules.ParseSNI(r.LandsOn)
	if err != nil {
		return r.LandsOn
	}
	name, ns, _, ok := rules.ServiceOf(sni.Host)
	if !ok {
		return r.LandsOn
	}
	s := fmt.Sprintf("%s/%s:%d", ns, name, sni.Port)
	if sni.Subset != "" {
		s += " subset " + sni.Subset
	}
	return s
}

func routeOK(status string) string {
	switch status {
	case mesh.RouteOK:
		return "yes"
	case mesh.RouteUnchecked:
		return "unchecked"
	}
	return status
}
