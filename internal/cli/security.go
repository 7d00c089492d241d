package cli

import (
	"flag"

	"github.com/thresher-ml/thresher/ingest"
)

// securityFlags are the flags of a Kafka client command (ingest, produce)
// that say how to reach a secured cluster, named as Kafka clients name them.
type securityFlags struct {
	protocol, mechanism, username, passwordFile string
	caFile, certFile, keyFile                   string
}

func (f *securityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.protocol, "security-protocol", "", "`protocol`: PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL")
	fs.StringVar(&f.mechanism, "sasl-mechanism", "", "SASL `mechanism`: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&f.username, "sasl-username", "", "SASL `user`")
	fs.StringVar(&f.passwordFile, "sasl-password-file", "", "`file` holding the SASL password (or set "+ingest.PasswordEnv+")")
	fs.StringVar(&f.caFile, "tls-ca-file", "", "PEM `file` of the CA certificates that sign the brokers' certificates (default: the system's)")
	fs.StringVar(&f.certFile, "tls-cert-file", "", "PEM client certificate `file`, for brokers that require one")
	fs.StringVar(&f.keyFile, "tls-key-file", "", "PEM private key `file` of --tls-cert-file")
}

// apply overlays the flags that were set.
func (f *securityFlags) apply(fs *flag.FlagSet, sec *ingest.SecurityConfig, sasl *ingest.SASLConfig, tls *ingest.TLSConfig) {
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "security-protocol":
			sec.Protocol = f.protocol
		case "sasl-mechanism":
			sasl.Mechanism = f.mechanism
		case "sasl-username":
			sasl.Username = f.username
		case "sasl-password-file":
			sasl.PasswordFile = f.passwordFile
			sasl.Password = "" // the flag wins over the environment
		case "tls-ca-file":
			tls.CAFile = f.caFile
		case "tls-cert-file":
			tls.CertFile = f.certFile
		case "tls-key-file":
			tls.KeyFile = f.keyFile
		}
	})
}
