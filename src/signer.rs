//! TrustPlane signer taxonomy v1: the four key-binding classes and their rank
//! (`conformance/trustplane-v1/signer-taxonomy-v1.json`).

/// A signer (key-binding) class, ordered weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignerClass {
    Software,
    RemoteKms,
    HardwareLocal,
    AttestedWorkload,
}

impl SignerClass {
    /// All classes in taxonomy order.
    pub const ALL: [SignerClass; 4] = [
        SignerClass::Software,
        SignerClass::RemoteKms,
        SignerClass::HardwareLocal,
        SignerClass::AttestedWorkload,
    ];

    /// Parses the exact wire name; anything else is unknown.
    pub fn parse(name: &str) -> Option<SignerClass> {
        match name {
            "software" => Some(SignerClass::Software),
            "remote_kms" => Some(SignerClass::RemoteKms),
            "hardware_local" => Some(SignerClass::HardwareLocal),
            "attested_workload" => Some(SignerClass::AttestedWorkload),
            _ => None,
        }
    }

    /// The wire name.
    pub const fn name(self) -> &'static str {
        match self {
            SignerClass::Software => "software",
            SignerClass::RemoteKms => "remote_kms",
            SignerClass::HardwareLocal => "hardware_local",
            SignerClass::AttestedWorkload => "attested_workload",
        }
    }

    /// The taxonomy rank (10, 20, 30, 40).
    pub const fn rank(self) -> u32 {
        match self {
            SignerClass::Software => 10,
            SignerClass::RemoteKms => 20,
            SignerClass::HardwareLocal => 30,
            SignerClass::AttestedWorkload => 40,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_exact() {
        for class in SignerClass::ALL {
            assert_eq!(SignerClass::parse(class.name()), Some(class));
        }
        assert_eq!(SignerClass::parse("Software"), None);
        assert_eq!(SignerClass::parse(" software"), None);
        assert_eq!(SignerClass::parse("hardware"), None);
    }
}
