package webhook

import "testing"

func TestMetricsServerOptions(t *testing.T) {
	o := NewOptions()
	if !o.MetricsSecure {
		t.Fatal("metrics must be served securely unless asked otherwise")
	}
	secure := o.metricsServerOptions()
	if !secure.SecureServing || secure.FilterProvider == nil || secure.BindAddress != o.MetricsAddr {
		t.Errorf("--metrics-secure: %+v, want TLS with the authentication and authorization filter on %s", secure, o.MetricsAddr)
	}
	o.MetricsSecure, o.MetricsAddr = false, "127.0.0.1:8080"
	plain := o.metricsServerOptions()
	if plain.SecureServing || plain.FilterProvider != nil || plain.BindAddress != "127.0.0.1:8080" {
		t.Errorf("--metrics-secure=false: %+v, want plain HTTP", plain)
	}
}
