package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Dir is the lab's temporary directory; everything in it is removed by
// Close. Other components of a chain keep their files under it.
func (l *Lab) Dir() string { return l.dir }

// CAFile is the PEM file of the lab's CA, which signed the API server's
// serving certificate.
func (l *Lab) CAFile() string { return l.pki.caFile }

// ServingCertFiles are the certificate and key that the API server serves
// with: valid for 127.0.0.1 and localhost and signed by CAFile, so that any
// other loopback server of the lab may serve with them too.
func (l *Lab) ServingCertFiles() (certFile, keyFile string) {
	return l.pki.servingCertFile, l.pki.servingKeyFile
}

// ServiceAccountToken returns a token for the service account
// namespace/name from the TokenRequest API, valid for ttl.
func (l *Lab) ServiceAccountToken(ctx context.Context, namespace, name string, ttl time.Duration) (string, error) {
	seconds := int64(ttl / time.Second)
	tr, err := l.Admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for service account %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// WriteAdminKubeconfig writes a kubeconfig for the admin (system:masters,
// client certificate inline) to path, for kubectl.
func (l *Lab) WriteAdminKubeconfig(path string) error {
	return l.writeKubeconfig(path, "lab-admin", &clientcmdapi.AuthInfo{
		ClientCertificateData: l.pki.adminCertPEM,
		ClientKeyData:         l.pki.adminKeyPEM,
	})
}

// WriteTokenKubeconfig writes a kubeconfig that authenticates with token
// (a service account's) to path.
func (l *Lab) WriteTokenKubeconfig(path, user, token string) error {
	return l.writeKubeconfig(path, user, &clientcmdapi.AuthInfo{Token: token})
}

func (l *Lab) writeKubeconfig(path, user string, auth *clientcmdapi.AuthInfo) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lab"] = &clientcmdapi.Cluster{Server: l.host, CertificateAuthorityData: l.pki.caPEM}
	cfg.AuthInfos[user] = auth
	cfg.Contexts["lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: user}
	cfg.CurrentContext = "lab"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*cfg, path)
}
