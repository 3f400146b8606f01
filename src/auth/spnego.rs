//! SPNEGO (RFC 4178) as WinRM's `Negotiate` scheme carries Kerberos: a NegTokenInit offering
//! the Kerberos mechanism with the AP-REQ as its optimistic token, and the acceptor's
//! NegTokenResp with the AP-REP and, when it sends one, a mechListMIC over the offered list.

use super::der;

/// `1.3.6.1.5.5.2`, the SPNEGO mechanism, DER content of the OID.
const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];

/// `negState` values.
pub(crate) const ACCEPT_COMPLETED: u8 = 0;
pub(crate) const ACCEPT_INCOMPLETE: u8 = 1;
pub(crate) const REJECT: u8 = 2;

/// The DER `MechTypeList` offering these mechanisms: what a mechListMIC covers.
pub(crate) fn mech_type_list(mechs: &[&[u8]]) -> Vec<u8> {
    let mut oids = Vec::new();
    for mech in mechs {
        der::write(&mut oids, 0x06, mech);
    }
    der::tlv(0x30, &oids)
}

/// An initial SPNEGO token: the mechanism list and the optimistic token for the first one.
pub(crate) fn neg_token_init(mech_list: &[u8], token: &[u8]) -> Vec<u8> {
    let mut fields = der::tlv(0xa0, mech_list);
    der::write(&mut fields, 0xa2, &der::tlv(0x04, token));
    let init = der::tlv(0xa0, &der::tlv(0x30, &fields));
    let mut inner = der::tlv(0x06, SPNEGO_OID);
    inner.extend_from_slice(&init);
    der::tlv(0x60, &inner)
}

/// A NegTokenResp (to send our mechListMIC, or as an acceptor answers).
pub(crate) fn neg_token_resp(
    state: Option<u8>,
    token: Option<&[u8]>,
    mic: Option<&[u8]>,
) -> Vec<u8> {
    let mut fields = Vec::new();
    if let Some(state) = state {
        der::write(&mut fields, 0xa0, &[0x0a, 0x01, state]);
    }
    if let Some(token) = token {
        der::write(&mut fields, 0xa2, &der::tlv(0x04, token));
    }
    if let Some(mic) = mic {
        der::write(&mut fields, 0xa3, &der::tlv(0x04, mic));
    }
    der::tlv(0xa1, &der::tlv(0x30, &fields))
}

/// What an acceptor's NegTokenResp says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NegTokenResp {
    pub state: Option<u8>,
    pub mech: Option<Vec<u8>>,
    pub token: Option<Vec<u8>>,
    pub mic: Option<Vec<u8>>,
}

/// Parses a NegTokenResp; `None` when the bytes are not one.
pub(crate) fn parse_neg_token_resp(bytes: &[u8]) -> Option<NegTokenResp> {
    let (0xa1, content, _) = der::read(bytes)? else {
        return None;
    };
    let (0x30, mut fields, _) = der::read(content)? else {
        return None;
    };
    let mut resp = NegTokenResp::default();
    while !fields.is_empty() {
        let (tag, value, rest) = der::read(fields)?;
        fields = rest;
        let octets = || match der::read(value) {
            Some((0x04, octets, _)) => Some(octets.to_vec()),
            _ => None,
        };
        match tag {
            0xa0 => match der::read(value)? {
                (0x0a, [state], _) => resp.state = Some(*state),
                _ => return None,
            },
            0xa1 => match der::read(value)? {
                (0x06, oid, _) => resp.mech = Some(oid.to_vec()),
                _ => return None,
            },
            0xa2 => resp.token = Some(octets()?),
            0xa3 => resp.mic = Some(octets()?),
            _ => {}
        }
    }
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_none() {
        let list = mech_type_list(&[crate::auth::kerberos::gss::KRB5_OID]);
        let init = neg_token_init(&list, b"ap-req");
        assert_eq!(init[0], 0x60);
        assert!(init.windows(list.len()).any(|w| w == list));
        let resp = neg_token_resp(Some(ACCEPT_COMPLETED), Some(b"ap-rep"), Some(b"mic"));
        let parsed = parse_neg_token_resp(&resp).unwrap();
        assert_eq!(parsed.state, Some(ACCEPT_COMPLETED));
        assert_eq!(parsed.token.as_deref(), Some(&b"ap-rep"[..]));
        assert_eq!(parsed.mic.as_deref(), Some(&b"mic"[..]));
        for cut in 0..resp.len() {
            let _ = parse_neg_token_resp(&resp[..cut]);
        }
        assert!(parse_neg_token_resp(b"\xa1\x03\x30\x01").is_none());
        assert!(parse_neg_token_resp(&init).is_none());
    }
}
