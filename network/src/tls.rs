//! TLS 1.3 identities and mutual authentication by committee key.
//!
//! Each node presents a self-signed certificate over its ed25519 committee
//! key. Certificates chain to nothing: a peer is authenticated by the key in
//! its SubjectPublicKeyInfo, which must be a committee member (and, when
//! dialing, the member we meant to reach), plus the TLS 1.3 CertificateVerify
//! signature proving it holds that key.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use ordo_types::{Committee, Keypair, NodeIndex, PublicKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::metrics::Metrics;
use crate::{Error, Result};

/// ALPN protocol id; both sides insist on it.
pub(crate) const ALPN: &[u8] = b"ordo/1";

/// The name we ask for when dialing; verification ignores it (keys, not
/// names, identify members).
pub(crate) const SERVER_NAME: &str = "ordo";

/// DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE {
/// SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) } + 32 key bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A node's certificate and private key, ready for rustls.
pub(crate) struct Identity {
    pub cert: CertificateDer<'static>,
    pkcs8: Vec<u8>,
}

impl Identity {
    /// A self-signed certificate over the committee key.
    pub fn new(keypair: &Keypair) -> Result<Self> {
        let pkcs8 = pkcs8_v2(&keypair.seed(), &keypair.public().0);
        let der = PrivatePkcs8KeyDer::from(pkcs8.clone());
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)
            .map_err(|e| Error::Tls(format!("loading the ed25519 key: {e}")))?;
        let params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
            .map_err(|e| Error::Tls(e.to_string()))?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| Error::Tls(format!("self-signing: {e}")))?;
        Ok(Identity {
            cert: cert.der().clone(),
            pkcs8,
        })
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone()))
    }
}

/// PKCS#8 v2 (RFC 8410 `OneAsymmetricKey`) for an ed25519 seed and its
/// public key.
fn pkcs8_v2(seed: &[u8; 32], public: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x53, // SEQUENCE, 83 bytes
        0x02, 0x01, 0x01, // version 2
        0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, // AlgorithmIdentifier ed25519
        0x04, 0x22, 0x04, 0x20, // privateKey: OCTET STRING { OCTET STRING (32) }
    ];
    der.extend_from_slice(seed);
    der.extend_from_slice(&[0xa1, 0x23, 0x03, 0x21, 0x00]); // [1] publicKey BIT STRING
    der.extend_from_slice(public);
    der
}

/// The ed25519 key a certificate's SubjectPublicKeyInfo carries.
pub(crate) fn cert_key(cert: &CertificateDer<'_>) -> std::result::Result<PublicKey, String> {
    let parsed = ParsedCertificate::try_from(cert).map_err(|e| format!("unparsable: {e}"))?;
    let spki = parsed.subject_public_key_info();
    let bytes = spki.as_ref();
    match bytes.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
        Some(key) => key
            .try_into()
            .map(PublicKey)
            .map_err(|_| "ed25519 key of the wrong length".to_string()),
        None => Err("certificate key is not ed25519".to_string()),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Checks membership (and the expected index) of a presented certificate,
/// and the handshake signature made with its key.
#[derive(Debug)]
struct MemberCheck {
    committee: Arc<Committee>,
    /// When dialing: the only member we accept.
    expected: Option<NodeIndex>,
    algorithms: WebPkiSupportedAlgorithms,
    metrics: Arc<Metrics>,
}

impl MemberCheck {
    fn check(
        &self,
        cert: &CertificateDer<'_>,
        side: &str,
    ) -> std::result::Result<(), rustls::Error> {
        let refuse = |reason: String| {
            self.metrics
                .refused_handshakes
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(side, %reason, "refusing peer at the TLS handshake");
            Err(rustls::Error::General(reason))
        };
        let key = match cert_key(cert) {
            Ok(key) => key,
            Err(reason) => return refuse(reason),
        };
        match (self.committee.index_of(&key), self.expected) {
            (None, _) => refuse(format!("key {key:?} is not a committee member")),
            (Some(found), Some(expected)) if found != expected => refuse(format!(
                "dialed member {expected} but key {key:?} belongs to member {found}"
            )),
            _ => Ok(()),
        }
    }

    fn signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms).inspect_err(|e| {
            self.metrics
                .refused_handshakes
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "refusing peer: bad TLS 1.3 handshake signature");
        })
    }
}

/// Verifies the server we dialed (client side).
#[derive(Debug)]
struct ServerCheck(MemberCheck);

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.0
            .check(end_entity, "client")
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not supported".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Verifies a dialing client (server side).
#[derive(Debug)]
struct ClientCheck(MemberCheck);

impl ClientCertVerifier for ClientCheck {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.0
            .check(end_entity, "server")
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not supported".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

fn member_check(
    committee: &Arc<Committee>,
    expected: Option<NodeIndex>,
    metrics: &Arc<Metrics>,
) -> MemberCheck {
    MemberCheck {
        committee: committee.clone(),
        expected,
        algorithms: provider().signature_verification_algorithms,
        metrics: metrics.clone(),
    }
}

/// rustls server config: TLS 1.3 only, client certificates mandatory and
/// checked against the committee.
pub(crate) fn server_config(
    identity: &Identity,
    committee: &Arc<Committee>,
    metrics: &Arc<Metrics>,
) -> Result<rustls::ServerConfig> {
    let verifier = ClientCheck(member_check(committee, None, metrics));
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(vec![identity.cert.clone()], identity.key())
        .map_err(|e| Error::Tls(e.to_string()))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// rustls client config for dialing member `peer` only.
pub(crate) fn client_config(
    identity: &Identity,
    committee: &Arc<Committee>,
    peer: NodeIndex,
    metrics: &Arc<Metrics>,
) -> Result<rustls::ClientConfig> {
    let verifier = ServerCheck(member_check(committee, Some(peer), metrics));
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(vec![identity.cert.clone()], identity.key())
        .map_err(|e| Error::Tls(e.to_string()))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_carries_the_committee_key() {
        let keypair = Keypair::from_seed([3; 32]);
        let identity = Identity::new(&keypair).unwrap();
        assert_eq!(cert_key(&identity.cert).unwrap(), keypair.public());
    }

    #[test]
    fn garbage_certificate_is_refused() {
        let cert = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(cert_key(&cert).is_err());
    }

    #[test]
    fn refuses_non_members_and_unexpected_members() {
        let (committee, keys) = Committee::for_testing(3);
        let committee = Arc::new(committee);
        let metrics = Arc::new(Metrics::new(3));
        let cert = |k: &Keypair| Identity::new(k).unwrap().cert;
        let any = member_check(&committee, None, &metrics);
        assert!(any.check(&cert(&keys[1]), "test").is_ok());
        assert!(any
            .check(&cert(&Keypair::from_seed([99; 32])), "test")
            .is_err());
        let only_two = member_check(&committee, Some(2), &metrics);
        assert!(only_two.check(&cert(&keys[2]), "test").is_ok());
        assert!(only_two.check(&cert(&keys[1]), "test").is_err());
        assert_eq!(metrics.refused_handshakes.load(Ordering::Relaxed), 2);
    }
}
