package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloudflare/cfssl/helpers"
)

// Files of a root directory (--dir). A root rotation keeps the previous
// root beside the new one and a transition bundle trusting both.
const (
	RootKeyFile          = "root-key.pem"
	PreviousRootCertFile = "previous-root-cert.pem"
	PreviousRootKeyFile  = "previous-root-key.pem"
	TransitionRootFile   = "transition-root-cert.pem"
)

// Keys are readable by their owner only, in a directory only the owner can
// list: they are the whole trust of the mesh.
const (
	keyMode  fs.FileMode = 0o600
	certMode fs.FileMode = 0o644
	dirMode  fs.FileMode = 0o700
)

// File is one file to write.
type File struct {
	Name   string
	Data   []byte
	Secret bool
}

// WriteFiles writes files into dir; the directories it creates are 0700,
// an existing one keeps its mode (it may be someone's /tmp or home). Unless
// force is set, it refuses before writing anything if any file exists, so
// that a refused run leaves the directory as it was.
func WriteFiles(dir string, files []File, force bool) error {
	if err := MakeDir(dir); err != nil {
		return err
	}
	if !force {
		for _, f := range files {
			p := filepath.Join(dir, f.Name)
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("%s already exists; pass --force to overwrite it or choose another --dir", p)
			}
		}
	}
	for _, f := range files {
		mode := certMode
		if f.Secret {
			mode = keyMode
		}
		if err := writeAtomic(filepath.Join(dir, f.Name), f.Data, mode); err != nil {
			return err
		}
	}
	return nil
}

// WriteBackup writes data as a new file, readable by its owner only, in dir
// (created 0700 if missing) named name, or name-2, name-3, … when that is
// taken: a backup never replaces another. It returns the file's path.
func WriteBackup(dir, name string, data []byte) (string, error) {
	if err := MakeDir(dir); err != nil {
		return "", err
	}
	ext := filepath.Ext(name)
	for i := 1; i < 1000; i++ {
		p := filepath.Join(dir, name)
		if i > 1 {
			p = filepath.Join(dir, fmt.Sprintf("%s-%d%s", strings.TrimSuffix(name, ext), i, ext))
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, keyMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("write backup %s: %w", p, err)
		}
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(p)
			return "", fmt.Errorf("write backup %s: %w", p, err)
		}
		return p, syncDir(dir)
	}
	return "", fmt.Errorf("write backup %s in %s: too many backups of that name; move old ones away", name, dir)
}

// MakeDir creates dir and its missing parents, each 0700 (whatever the
// umask); directories that exist are left as they are.
func MakeDir(dir string) error {
	st, err := os.Stat(dir)
	switch {
	case err == nil && st.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("%s is a file, not a directory; choose another --dir", dir)
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", dir, err)
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MakeDir(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return fmt.Errorf("restrict %s to its owner: %w", dir, err)
	}
	return nil
}

// writeAtomic writes through a temporary file created with the final mode,
// so a key is never readable by others, not even for an instant, and a
// crash never leaves half a PEM file: the data is synced to disk before the
// rename, and the directory after it.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write %s: sync to disk: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable. Some systems (Windows) cannot
// sync a directory; the rename is then as durable as they make it.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// RootFiles are the files of a root CA in --dir.
func RootFiles(root *CA) []File {
	return []File{{Name: RootCertFile, Data: root.CertPEM}, {Name: RootKeyFile, Data: root.KeyPEM, Secret: true}}
}

// BundleFiles are the four files of a cluster directory.
func BundleFiles(b *Bundle) []File {
	return []File{
		{Name: CACertFile, Data: b.CACert},
		{Name: CAKeyFile, Data: b.CAKey, Secret: true},
		{Name: RootCertFile, Data: b.RootCert},
		{Name: CertChainFile, Data: b.CertChain},
	}
}

func readFile(path, what string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: not found; %s", path, what)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// ParseKey decodes a PEM private key (PKCS#1, PKCS#8 or SEC 1); name is the
// file the errors mention.
func ParseKey(data []byte, name string) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: not a PEM file; pass a PEM-encoded private key (-----BEGIN ... PRIVATE KEY-----)", name)
	}
	if block.Type == "CERTIFICATE" {
		return nil, fmt.Errorf("%s: holds a certificate where a private key was expected; pass the key file", name)
	}
	if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
		return nil, fmt.Errorf("%s: the private key is encrypted; decrypt it first (openssl pkey -in %s -out plain.pem)", name, name)
	}
	key, err := helpers.ParsePrivateKeyPEM(pem.EncodeToMemory(block))
	if err != nil {
		return nil, fmt.Errorf("%s: not a usable RSA or ECDSA private key (%v); pass the CA's private key", name, err)
	}
	return key, nil
}

// KeyMatches reports whether key is the private half of c's public key.
func KeyMatches(c *x509.Certificate, key crypto.Signer) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(equaler)
	return ok && pub.Equal(c.PublicKey)
}

// LoadCA reads a CA certificate and its key, checking that the file holds
// exactly one certificate, that it is a CA valid now, and that the key
// belongs to it.
func LoadCA(certPath, keyPath string, now time.Time) (*CA, error) {
	ca, err := LoadCACert(certPath, now)
	if err != nil {
		return nil, err
	}
	if err := ca.LoadKey(keyPath); err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadCACert reads a CA certificate without its key, for what needs no
// signing: the key of a root is often kept offline.
func LoadCACert(certPath string, now time.Time) (*CA, error) {
	certPEM, err := readFile(certPath, "make a root with `kubectl mesh certs root` or pass --root-cert")
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificates(certPEM, certPath)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%s: holds %d certificates; pass a file with only the CA certificate", certPath, len(certs))
	}
	if err := CheckIssuer(certs[0], certPath, now); err != nil {
		return nil, err
	}
	return &CA{Cert: certs[0], CertPEM: certPEM, certPath: certPath}, nil
}

// LoadKey reads the CA's private key, checking that it belongs to the
// certificate.
func (ca *CA) LoadKey(keyPath string) error {
	keyPEM, err := readFile(keyPath, "signing needs the CA's private key; pass it with --root-key (e.g. from where the root is kept offline)")
	if err != nil {
		return err
	}
	key, err := ParseKey(keyPEM, keyPath)
	if err != nil {
		return err
	}
	if !KeyMatches(ca.Cert, key) {
		return fmt.Errorf("%s: the key does not match the certificate in %s; pass the key that belongs to it", keyPath, ca.certPath)
	}
	ca.Key, ca.KeyPEM = key, keyPEM
	return nil
}

// LoadBundle reads the four cacerts files of a cluster directory.
func LoadBundle(dir string) (*Bundle, error) {
	hint := "make it with `kubectl mesh certs intermediate " + filepath.Base(dir) + "`"
	var b Bundle
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{CACertFile, &b.CACert}, {CAKeyFile, &b.CAKey}, {RootCertFile, &b.RootCert}, {CertChainFile, &b.CertChain}} {
		data, err := readFile(filepath.Join(dir, f.name), hint)
		if err != nil {
			return nil, err
		}
		*f.dst = data
	}
	return &b, nil
}

// Concat joins PEM files, each ending with a newline.
func Concat(parts ...[]byte) []byte {
	var buf bytes.Buffer
	for _, p := range parts {
		buf.Write(bytes.TrimSpace(p))
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}
