//! A throwaway CA and certificates, made with the `openssl` CLI as an operator would.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::run;

/// A CA, a server certificate for `localhost` and `127.0.0.1`, one for another name only
/// (`redis.internal`, as a managed Redis presents), and a second CA nobody uses.
pub struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    pub fn make() -> Certs {
        let dir = tempfile::Builder::new()
            .prefix("ferrochat-certs-")
            .tempdir()
            .expect("a temporary directory");
        let certs = Certs { dir };
        certs.ca("ca");
        certs.ca("other-ca");
        certs.leaf("server", "ca", "DNS:localhost,IP:127.0.0.1");
        certs.leaf("named", "ca", "DNS:redis.internal");
        certs.client("client", "ca", "chatcert");
        // Readable by the postgres and mysql users (the servers copy their keys as needed).
        run(
            "chmod",
            Command::new("chmod")
                .args(["-R", "a+rX"])
                .arg(certs.dir.path()),
        );
        certs
    }

    fn openssl(&self, args: &[&str]) {
        run(
            "openssl",
            Command::new("openssl")
                .args(args)
                .current_dir(self.dir.path()),
        );
    }

    fn ca(&self, name: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=ferrochat test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    fn leaf(&self, name: &str, ca: &str, san: &str) {
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=ferrochat test server",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        let ext = self.dir.path().join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={san}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .expect("write the extensions file");
        self.openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    /// A client certificate whose common name is `cn` (PostgreSQL's `cert` auth maps it to the
    /// database user of that name).
    fn client(&self, name: &str, ca: &str, cn: &str) {
        self.openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        std::fs::write(
            self.dir.path().join(format!("{name}.ext")),
            "basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
\
             extendedKeyUsage=clientAuth
",
        )
        .expect("write the extensions file");
        self.openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    /// A client certificate for the user `chatcert`, signed by the CA.
    pub fn client_cert(&self) -> (PathBuf, PathBuf) {
        (self.path("client.pem"), self.path("client.key"))
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA that signed every server certificate.
    pub fn ca_pem(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// A CA that signed nothing the servers present.
    pub fn other_ca_pem(&self) -> PathBuf {
        self.path("other-ca.pem")
    }

    /// For `localhost` and `127.0.0.1`.
    pub fn server(&self) -> (PathBuf, PathBuf) {
        (self.path("server.pem"), self.path("server.key"))
    }

    /// For `redis.internal` only.
    pub fn named(&self) -> (PathBuf, PathBuf) {
        (self.path("named.pem"), self.path("named.key"))
    }
}
