//! Known answers from MS-NLMP 4.2.4 (NTLMv2 with extended session security and key exchange),
//! written out here and, in the interop suite, also compared with
//! the transcription there; then the client against the acceptor, and hostile tokens.

use super::keys::{self, direction_keys};
use super::messages::{self, Authenticate, AvPairs, av, from_utf16, utf16};
use super::*;
use crate::auth::Password;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    hex(s).try_into().unwrap()
}

// MS-NLMP 4.2.1 and 4.2.4.
const SERVER_CHALLENGE: &str = "0123456789abcdef";
const CLIENT_CHALLENGE: &str = "aaaaaaaaaaaaaaaa";
const RANDOM_SESSION_KEY: &str = "55555555555555555555555555555555";
const TARGET_INFO: &str =
    "02000c0044006f006d00610069006e0001000c0053006500720076006500720000000000";
const NT_HASH: &str = "a4f49c406510bdcab6824ee7c30fd852";
const NTOWF_V2: &str = "0c868a403bfd7a93a3001ef22ef02e3f";
const TEMP: &str = "01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000";
const NT_PROOF: &str = "68cd0ab851e51c96aabc927bebef6a1c";
const LM_V2: &str = "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa";
const SESSION_BASE_KEY: &str = "8de40ccadbc14a82f15cb0ad0de95ca3";
const ENCRYPTED_SESSION_KEY: &str = "c5dad2544fc9799094ce1ce90bc9d03e";
const CHALLENGE_MESSAGE: &str = "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044000000060070170000000f53006500720076006500720002000c0044006f006d00610069006e0001000c0053006500720076006500720000000000";
const AUTHENTICATE_MESSAGE: &str = "4e544c4d5353500003000000180018006c00000054005400840000000c000c00480000000800080054000000100010005c00000010001000d8000000358288e20501280a0000000f44006f006d00610069006e00550073006500720043004f004d005000550054004500520086c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa68cd0ab851e51c96aabc927bebef6a1c01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000c5dad2544fc9799094ce1ce90bc9d03e";
const CLIENT_SEALING_KEY: &str = "59f600973cc4960a25480a7c196e4c58";
const CLIENT_SIGNING_KEY: &str = "4788dc861b4782f35d43fd98fe1a2d39";
const SERVER_SEALING_KEY: &str = "9355f3a957c1583d25c4c2f11e40390e";
const SERVER_SIGNING_KEY: &str = "d04d6f10741041d1d246d64188d7a8ad";
const PLAINTEXT: &str = "50006c00610069006e007400650078007400";
const SEALED: &str = "54e50165bf1936dc996020c1811b0f06fb5f";
const SIGNATURE: &str = "010000007fb38ec5c55d497600000000";

#[test]
fn ms_nlmp_4_2_4_responses_and_keys() {
    let nt_hash = keys::nt_hash("Password");
    assert_eq!(nt_hash.as_slice(), hex(NT_HASH));
    let key = keys::ntowf_v2(&nt_hash, "User", "Domain");
    assert_eq!(key.as_slice(), hex(NTOWF_V2));
    let blob = keys::client_blob([0; 8], arr(CLIENT_CHALLENGE), &hex(TARGET_INFO));
    assert_eq!(blob, hex(TEMP));
    let proof = keys::nt_proof(&key, &arr(SERVER_CHALLENGE), &blob);
    assert_eq!(proof.to_vec(), hex(NT_PROOF));
    assert_eq!(
        keys::lm_v2(&key, &arr(SERVER_CHALLENGE), &arr(CLIENT_CHALLENGE)),
        hex(LM_V2)
    );
    let base = keys::session_base_key(&key, &proof);
    assert_eq!(base.as_slice(), hex(SESSION_BASE_KEY));
    assert_eq!(
        Rc4::once(base.as_slice(), &hex(RANDOM_SESSION_KEY)),
        hex(ENCRYPTED_SESSION_KEY)
    );
}

#[test]
fn ms_nlmp_4_2_4_3_messages_encode_and_parse_to_the_spec_bytes() {
    let challenge = messages::parse_challenge(&hex(CHALLENGE_MESSAGE)).unwrap();
    assert_eq!(challenge.flags, 0xe28a_8233);
    assert_eq!(challenge.server_challenge, arr(SERVER_CHALLENGE));
    assert_eq!(challenge.target_name, utf16("Server"));
    assert_eq!(challenge.target_info, hex(TARGET_INFO));
    assert_eq!(challenge.encode(), hex(CHALLENGE_MESSAGE));

    let mut nt_response = hex(NT_PROOF);
    nt_response.extend(hex(TEMP));
    let message = Authenticate {
        lm_response: hex(LM_V2),
        nt_response,
        domain: utf16("Domain"),
        user: utf16("User"),
        workstation: utf16("COMPUTER"),
        encrypted_session_key: hex(ENCRYPTED_SESSION_KEY),
        flags: 0xe288_8235,
        version: Some([5, 1, 0x28, 0x0a, 0, 0, 0, 15]),
        mic: None,
    };
    assert_eq!(message.encode(), hex(AUTHENTICATE_MESSAGE));
    assert_eq!(
        Authenticate::parse(&hex(AUTHENTICATE_MESSAGE)).unwrap(),
        message
    );
}

#[test]
fn ms_nlmp_4_2_4_4_sealing() {
    let (client, server) = direction_keys(&arr(RANDOM_SESSION_KEY));
    assert_eq!(client.sealing.as_slice(), hex(CLIENT_SEALING_KEY));
    assert_eq!(client.signing.as_slice(), hex(CLIENT_SIGNING_KEY));
    assert_eq!(server.sealing.as_slice(), hex(SERVER_SEALING_KEY));
    assert_eq!(server.signing.as_slice(), hex(SERVER_SIGNING_KEY));
    let (mut outgoing, _) = directions(&arr(RANDOM_SESSION_KEY), true);
    let mut data = hex(PLAINTEXT);
    let signature = outgoing.seal(&mut data);
    assert_eq!(data, hex(SEALED));
    assert_eq!(signature.to_vec(), hex(SIGNATURE));
    // The server opens it in place.
    let (_, mut incoming) = directions(&arr(RANDOM_SESSION_KEY), false);
    incoming.open(&signature, &mut data).unwrap();
    assert_eq!(data, hex(PLAINTEXT));
}

/// The transcription in `../shared/peer-fixtures/ms-nlmp` says the same (interop suite).
#[cfg(feature = "interop")]
#[test]
fn peer_captures_the_shared_transcription_agrees_with_these_values() {
    let dir = crate::auth::peer_fixtures("ms-nlmp");
    let text = std::fs::read_to_string(dir.join("ms-nlmp-4.2-ntlmv2-vectors.txt")).unwrap();
    // The first long hex token after the name (values sit after `=`, some on the next line).
    let value = |name: &str| -> String {
        let at = text
            .lines()
            .scan(0, |offset, l| {
                let start = *offset;
                *offset += l.len() + 1;
                Some((start, l))
            })
            .find(|(_, l)| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("{name} in the transcription"))
            .0;
        text[at + name.len()..]
            .split(|c: char| !c.is_ascii_hexdigit())
            .find(|t| t.len() >= 16)
            .unwrap()
            .to_owned()
    };
    for (name, ours) in [
        ("NTOWFv2", NTOWF_V2),
        ("NTProofStr", NT_PROOF),
        ("EncryptedRandomSessionKey", ""),
        ("ClientSealingKey", CLIENT_SEALING_KEY),
        ("ClientSigningKey", CLIENT_SIGNING_KEY),
        ("ServerSealingKey", SERVER_SEALING_KEY),
        ("ServerSigningKey", SERVER_SIGNING_KEY),
    ] {
        if !ours.is_empty() {
            assert_eq!(value(name), ours, "{name}");
        }
    }
    assert!(text.contains(ENCRYPTED_SESSION_KEY));
    assert!(text.contains(SEALED));
    assert!(text.contains(&AUTHENTICATE_MESSAGE[..64]));
}

#[test]
fn the_authenticate_message_carries_mic_bindings_and_target_name() {
    let credentials = NtlmCredentials::new(&Credentials::new(r"Domain\User", "Password"));
    let mut client = NtlmClient::new(credentials, "HTTP/fs01.example.test");
    client.set_channel_bindings(b"tls-server-end-point:abc");
    let negotiate = messages::negotiate(CLIENT_FLAGS);
    let random = Randomness {
        client_challenge: arr(CLIENT_CHALLENGE),
        exported_session_key: Zeroizing::new(arr(RANDOM_SESSION_KEY)),
        now: [0; 8],
    };
    let (token, flags, exported) = client
        .authenticate(&negotiate, &hex(CHALLENGE_MESSAGE), &random)
        .unwrap();
    assert_eq!(exported.as_slice(), hex(RANDOM_SESSION_KEY));
    assert!(flags & flags::KEY_EXCH != 0 && flags & flags::SEAL != 0);
    let message = Authenticate::parse(&token).unwrap();
    assert_eq!(message.user, utf16("User"));
    assert_eq!(message.domain, utf16("Domain"));
    let pairs = AvPairs::parse(&message.nt_response[16 + 28..]).unwrap();
    assert_eq!(pairs.get(av::FLAGS), Some(&2u32.to_le_bytes()[..]));
    assert_eq!(
        pairs.get(av::CHANNEL_BINDINGS),
        Some(&gss_bindings_md5(b"tls-server-end-point:abc")[..])
    );
    assert_eq!(
        pairs.get(av::TARGET_NAME),
        Some(&utf16("HTTP/fs01.example.test")[..])
    );
    let mut zeroed = token.clone();
    zeroed[messages::MIC_OFFSET..messages::MIC_OFFSET + 16].fill(0);
    let mic = keys::hmac_md5(
        exported.as_slice(),
        &[&negotiate, &hex(CHALLENGE_MESSAGE), &zeroed],
    );
    assert_eq!(message.mic, Some(mic));
}

fn handshake(
    client: &mut NtlmClient,
    server: &mut acceptor::NtlmAcceptor,
) -> Result<(), ContextError> {
    let Step::Continue(negotiate) = client.step(None)? else {
        panic!("NTLM starts with NEGOTIATE")
    };
    let Step::Continue(challenge) = server.step(Some(&negotiate))? else {
        panic!("then CHALLENGE")
    };
    let Step::Done(Some(authenticate)) = client.step(Some(&challenge))? else {
        panic!("then AUTHENTICATE")
    };
    server.step(Some(&authenticate))?;
    Ok(())
}

fn pair(user: &str, password: &str, server_user: &str) -> (NtlmClient, acceptor::NtlmAcceptor) {
    let client = NtlmClient::new(
        NtlmCredentials::new(&Credentials::new(user, Password::new(password))),
        "HTTP/fs01",
    );
    (client, acceptor::NtlmAcceptor::new(server_user, "s3cret"))
}

fn open(context: &mut dyn SecurityContext, part: &SealedPart) -> Result<Vec<u8>, ContextError> {
    let mut data = part.data.clone();
    let range = context.open(&part.header, &mut data)?;
    Ok(data[range].to_vec())
}

#[test]
fn client_and_acceptor_authenticate_and_seal_both_ways() {
    let (mut client, mut server) = pair("demo", "s3cret", "demo");
    handshake(&mut client, &mut server).unwrap();
    assert!(server.is_complete());
    for message in [b"<s:Envelope/>".as_slice(), b"second", b""] {
        let sealed = client.seal(message).unwrap();
        assert_eq!(sealed.header.len(), seal::SIGNATURE_LEN);
        if !message.is_empty() {
            assert_ne!(sealed.data, message);
        }
        assert_eq!(open(&mut server, &sealed).unwrap(), message);
        let answer = server.seal(b"answer").unwrap();
        assert_eq!(open(&mut client, &answer).unwrap(), b"answer");
    }
    // An established context asked to step with nothing (a 200 without a token) is done and
    // keeps its keys; a token after the end is refused.
    assert!(matches!(client.step(None), Ok(Step::Done(None))));
    // Both sides name themselves as WinRM does: the HTTP scheme, the sealing's protocol.
    for context in [&client as &dyn SecurityContext, &server] {
        assert_eq!(
            (
                context.http_scheme(),
                context.protocol(),
                context.mechanism()
            ),
            (
                "Negotiate",
                "application/HTTP-SPNEGO-session-encrypted",
                "NTLM"
            )
        );
    }
    let sealed = client.seal(b"still sealing").unwrap();
    assert_eq!(open(&mut server, &sealed).unwrap(), b"still sealing");
    assert!(client.step(Some(b"NTLMSSP\0")).is_err());
}

/// A server that answers the NEGOTIATE without a CHALLENGE refused the client (it did not take
/// part in the handshake), and says so.
#[test]
fn a_negotiate_answered_without_a_challenge_is_a_refusal() {
    let mut client = NtlmClient::new(NtlmCredentials::new(&Credentials::new("u", "p")), "HTTP/h");
    client.step(None).unwrap();
    let e = client.step(None).unwrap_err();
    assert!(e.credentials_rejected, "{e:?}");
    assert_eq!(
        e.message,
        "NTLM: the server answered the NEGOTIATE message without a CHALLENGE"
    );
}

/// Every handshake has a session key of its own: the same message sealed first on two
/// connections of the same user looks different, and one connection's keys do not open the
/// other's (a constant or low-entropy exported session key would pass every other test).
#[test]
fn every_handshake_has_its_own_session_key() {
    let mut sealed = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let (mut client, mut server) = pair("demo", "s3cret", "demo");
        handshake(&mut client, &mut server).unwrap();
        sealed.push(client.seal(b"<s:Envelope/>").unwrap());
        servers.push(server);
    }
    assert_ne!(sealed[0].data, sealed[1].data);
    assert_ne!(sealed[0].header, sealed[1].header);
    assert!(open(&mut servers[1], &sealed[0]).is_err());
    assert_eq!(open(&mut servers[0], &sealed[0]).unwrap(), b"<s:Envelope/>");
    // And the keys come from the system's random source: 100 draws, no repeat.
    let draws: std::collections::HashSet<[u8; 16]> = (0..100)
        .map(|_| *Randomness::fresh().unwrap().exported_session_key)
        .collect();
    assert_eq!(draws.len(), 100);
}

#[test]
fn the_acceptor_admits_exactly_its_user_and_password() {
    let (mut client, mut server) = pair("DEMO", "s3cret", "demo");
    handshake(&mut client, &mut server).expect("user names compare without case");
    for (user, password, server_user) in [
        ("demo", "wrong", "demo"),
        ("bob", "s3cret", "demo"),
        (r"OTHER\demo", "s3cret", r"FS01\demo"),
    ] {
        let (mut client, mut server) = pair(user, password, server_user);
        let e = handshake(&mut client, &mut server).unwrap_err();
        assert!(e.credentials_rejected, "{user}: {e:?}");
    }
}

#[test]
fn channel_bindings_must_match_when_the_acceptor_knows_them() {
    let (mut client, mut server) = pair("demo", "s3cret", "demo");
    client.set_channel_bindings(b"tls-server-end-point:one");
    server.set_channel_bindings(b"tls-server-end-point:one");
    handshake(&mut client, &mut server).unwrap();
    let (mut client, mut server) = pair("demo", "s3cret", "demo");
    client.set_channel_bindings(b"tls-server-end-point:two");
    server.set_channel_bindings(b"tls-server-end-point:one");
    assert!(handshake(&mut client, &mut server).is_err());
    let (mut client, mut server) = pair("demo", "s3cret", "demo");
    server.set_channel_bindings(b"tls-server-end-point:one");
    assert!(handshake(&mut client, &mut server).is_err(), "none given");
}

#[test]
fn tampering_replay_and_a_forged_mic_are_refused() {
    let (mut client, mut server) = pair("demo", "s3cret", "demo");
    handshake(&mut client, &mut server).unwrap();
    let mut sealed = client.seal(b"pull page 2").unwrap();
    sealed.data[0] ^= 1;
    assert!(open(&mut server, &sealed).is_err());

    let (mut client, mut server) = pair("demo", "s3cret", "demo");
    handshake(&mut client, &mut server).unwrap();
    let first = client.seal(b"one").unwrap();
    let second = client.seal(b"two").unwrap();
    assert!(open(&mut server, &second).is_err(), "out of order");

    let (mut client, mut server) = pair("demo", "s3cret", "demo");
    handshake(&mut client, &mut server).unwrap();
    open(&mut server, &first).unwrap_err(); // sealed by another session
    let (mut client, mut server) = pair("demo", "s3cret", "demo");
    let Step::Continue(negotiate) = client.step(None).unwrap() else {
        panic!()
    };
    let Step::Continue(challenge) = server.step(Some(&negotiate)).unwrap() else {
        panic!()
    };
    let Step::Done(Some(mut authenticate)) = client.step(Some(&challenge)).unwrap() else {
        panic!()
    };
    authenticate[messages::MIC_OFFSET] ^= 1;
    let e = server.step(Some(&authenticate)).unwrap_err();
    assert!(e.message.contains("MIC"), "{e:?}");
}

/// Real Windows and pyspnego NTLM messages (interop suite).
#[cfg(feature = "interop")]
#[test]
fn peer_captures_real_windows_and_pyspnego_messages() {
    let dir = crate::auth::peer_fixtures("pyspnego/data");
    let challenge = std::fs::read(dir.join("ntlm_challenge")).unwrap();
    let parsed = messages::parse_challenge(&challenge).unwrap();
    assert_ne!(parsed.server_challenge, [0; 8]);
    let mut client = NtlmClient::new(
        NtlmCredentials::new(&Credentials::new(r"DOMAIN\user", "pass")),
        "HTTP/dc01",
    );
    client.step(None).unwrap();
    let Step::Done(Some(authenticate)) = client.step(Some(&challenge)).unwrap() else {
        panic!("an AUTHENTICATE for a real CHALLENGE")
    };
    assert_eq!(&authenticate[..12], b"NTLMSSP\0\x03\0\0\0");
    let negotiate = std::fs::read(dir.join("ntlm_negotiate")).unwrap();
    let mut server = acceptor::NtlmAcceptor::new("demo", "demo");
    let Step::Continue(answer) = server.step(Some(&negotiate)).unwrap() else {
        panic!()
    };
    assert_eq!(&answer[..12], b"NTLMSSP\0\x02\0\0\0");
    let authenticate = std::fs::read(dir.join("ntlm_authenticate")).unwrap();
    let parsed = Authenticate::parse(&authenticate).unwrap();
    assert!(!parsed.nt_response.is_empty());
}

/// A CHALLENGE that leaves out any flag the sealing depends on is refused by name: a server
/// (or someone on the path) cannot talk the client down to weaker sealing.
#[test]
fn a_challenge_without_a_required_flag_is_refused() {
    let challenge = hex(CHALLENGE_MESSAGE);
    for (flag, name) in [
        (
            flags::EXTENDED_SESSION_SECURITY,
            "extended session security",
        ),
        (flags::SIGN, "signing"),
        (flags::SEAL, "sealing"),
        (flags::N128, "128-bit keys"),
        (flags::KEY_EXCH, "key exchange"),
    ] {
        let mut weakened = challenge.clone();
        let offered = u32::from_le_bytes(weakened[20..24].try_into().unwrap());
        assert_ne!(offered & flag, 0, "{name} is in the vector's CHALLENGE");
        weakened[20..24].copy_from_slice(&(offered & !flag).to_le_bytes());
        let mut client =
            NtlmClient::new(NtlmCredentials::new(&Credentials::new("u", "p")), "HTTP/h");
        client.step(None).unwrap();
        let e = client.step(Some(&weakened)).unwrap_err();
        assert!(e.message.contains(name), "{name}: {e:?}");
    }
    // The vector's CHALLENGE itself goes through.
    let mut client = NtlmClient::new(NtlmCredentials::new(&Credentials::new("u", "p")), "HTTP/h");
    client.step(None).unwrap();
    assert!(client.step(Some(&challenge)).is_ok());
}

#[test]
fn malformed_and_truncated_tokens_are_errors_not_panics() {
    let challenge = hex(CHALLENGE_MESSAGE);
    let mut inputs: Vec<Vec<u8>> = vec![Vec::new(), b"NTLMSSP\0".to_vec(), vec![0xff; 300]];
    inputs.extend((0..challenge.len()).map(|cut| challenge[..cut].to_vec()));
    for input in &inputs {
        let mut client =
            NtlmClient::new(NtlmCredentials::new(&Credentials::new("u", "p")), "HTTP/h");
        client.step(None).unwrap();
        assert!(client.step(Some(input)).is_err(), "{} bytes", input.len());
        // An acceptor waits for a NEGOTIATE; none of these is one.
        let mut server = acceptor::NtlmAcceptor::new("u", "p");
        assert!(server.step(Some(input)).is_err(), "{} bytes", input.len());
        assert!(Authenticate::parse(input).is_err(), "{} bytes", input.len());
    }
    let authenticate = hex(AUTHENTICATE_MESSAGE);
    assert!(Authenticate::parse(&authenticate).is_ok());
    for cut in 0..authenticate.len() {
        assert!(
            Authenticate::parse(&authenticate[..cut]).is_err(),
            "cut at {cut} of {}",
            authenticate.len()
        );
    }
}

/// The flags named, together.
fn union(flags: &[u32]) -> u32 {
    flags.iter().fold(0, |all, flag| all | flag)
}

/// The NEGOTIATE asks for what the sealing needs and what Windows clients ask for, each flag by
/// name (a flag dropped from the request is a flag the server may leave out).
#[test]
fn the_negotiate_message_asks_for_each_flag_by_name() {
    let mut client = NtlmClient::new(NtlmCredentials::new(&Credentials::new("u", "p")), "HTTP/h");
    let Step::Continue(negotiate) = client.step(None).unwrap() else {
        panic!("NTLM starts with NEGOTIATE")
    };
    let asked = messages::parse_negotiate(&negotiate).unwrap();
    let expected = union(&[
        flags::UNICODE,
        flags::OEM,
        flags::REQUEST_TARGET,
        flags::SIGN,
        flags::SEAL,
        flags::NTLM,
        flags::ALWAYS_SIGN,
        flags::EXTENDED_SESSION_SECURITY,
        flags::VERSION,
        flags::N128,
        flags::KEY_EXCH,
        flags::N56,
    ]);
    assert_eq!(asked, expected, "{asked:#010x}");
}

fn authenticate_for(challenge: &[u8]) -> Authenticate {
    let mut client = NtlmClient::new(
        NtlmCredentials::new(&Credentials::new(r"Domain\User", "Password")),
        "HTTP/h",
    );
    client.step(None).unwrap();
    let Step::Done(Some(token)) = client.step(Some(challenge)).unwrap() else {
        panic!("AUTHENTICATE ends the handshake")
    };
    Authenticate::parse(&token).unwrap()
}

/// The AUTHENTICATE says what it does whatever the CHALLENGE offered: Unicode strings and the
/// NTLM protocol; and it names this machine as its workstation.
#[test]
fn the_authenticate_message_claims_unicode_and_ntlm_and_names_this_machine() {
    let challenge = hex(CHALLENGE_MESSAGE);
    let offered = u32::from_le_bytes(challenge[20..24].try_into().unwrap());
    for offered in [offered, offered & !(flags::UNICODE | flags::NTLM)] {
        let mut challenge = challenge.clone();
        challenge[20..24].copy_from_slice(&offered.to_le_bytes());
        let message = authenticate_for(&challenge);
        // What both sides offer, Unicode and NTLM always, and OEM never (Unicode won).
        assert_eq!(
            message.flags,
            (offered & CLIENT_FLAGS | flags::UNICODE | flags::NTLM) & !flags::OEM,
            "offered {offered:#010x}, sent {:#010x}",
            message.flags
        );
    }
    let message = authenticate_for(&challenge);
    assert_eq!(message.user, utf16("User"));
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        from_utf16(&message.workstation).unwrap(),
        hostname.trim().to_ascii_uppercase()
    );
}

#[test]
fn a_workstation_is_named_in_upper_case_or_generically() {
    assert_eq!(workstation_name(Some("fs01\n")), "FS01");
    assert_eq!(workstation_name(Some(" \n")), "WORKSTATION");
    assert_eq!(workstation_name(None), "WORKSTATION");
}

/// The MsvAvFlags the server sent are kept in the client's copy of the target info, with the
/// MIC's bit set whether or not the server had set it.
#[test]
fn the_servers_av_flags_are_kept_and_the_mic_bit_set() {
    let challenge = hex(CHALLENGE_MESSAGE);
    for server_flags in [0x1u32, 0x3] {
        let mut pairs = AvPairs::parse(&hex(TARGET_INFO)).unwrap();
        pairs.set(av::FLAGS, server_flags.to_le_bytes().to_vec());
        let info = pairs.encode();
        // The target info is the CHALLENGE's payload from offset 0x44: replace it and its length.
        let mut with_flags = challenge[..0x44].to_vec();
        with_flags.extend_from_slice(&info);
        let length = (info.len() as u16).to_le_bytes();
        with_flags[40..42].copy_from_slice(&length);
        with_flags[42..44].copy_from_slice(&length);
        let message = authenticate_for(&with_flags);
        let sent = AvPairs::parse(&message.nt_response[16 + 28..]).unwrap();
        assert_eq!(
            sent.get(av::FLAGS),
            Some(&(server_flags | 0x2).to_le_bytes()[..]),
            "server flags {server_flags:#x}"
        );
    }
}

#[test]
fn credentials_show_the_user_and_domain_never_the_hash() {
    let credentials = NtlmCredentials::new(&Credentials::new(r"CORP\alice", "Password"));
    let shown = format!("{credentials:?}");
    assert!(
        shown.contains(r#"user: "alice""#) && shown.contains(r#"domain: "CORP""#),
        "{shown}"
    );
    assert!(
        !shown.contains("nt_hash") && !shown.to_lowercase().contains(NT_HASH),
        "{shown}"
    );
}

/// The acceptor's CHALLENGE offers what it supports of what the client asked for, plus what a
/// server always says (target info, a server target, its version): as Windows answers.
#[test]
fn the_acceptor_offers_what_it_supports_of_what_was_asked() {
    let supported = union(&[
        flags::UNICODE,
        flags::REQUEST_TARGET,
        flags::SIGN,
        flags::SEAL,
        flags::NTLM,
        flags::ALWAYS_SIGN,
        flags::TARGET_TYPE_SERVER,
        flags::EXTENDED_SESSION_SECURITY,
        flags::TARGET_INFO,
        flags::VERSION,
        flags::N128,
        flags::KEY_EXCH,
        flags::N56,
    ]);
    let always = flags::TARGET_INFO | flags::TARGET_TYPE_SERVER | flags::VERSION;
    for asked in [u32::MAX, 0, CLIENT_FLAGS] {
        let mut server = acceptor::NtlmAcceptor::new("u", "p");
        let Step::Continue(challenge) = server.step(Some(&messages::negotiate(asked))).unwrap()
        else {
            panic!("a CHALLENGE answers the NEGOTIATE")
        };
        let offered = messages::parse_challenge(&challenge).unwrap().flags;
        assert_eq!(offered, asked & supported | always, "asked {asked:#010x}");
    }
}

/// An older NTLMv2 client, without key exchange and without a MIC, as the acceptor sees it:
/// its NEGOTIATE, and the AUTHENTICATE it would send with `nt_response` in place of its own
/// when given. Returns the acceptor's verdict, the acceptor and the session key.
fn legacy_client(
    nt_response: Option<Vec<u8>>,
) -> (
    Result<Step, ContextError>,
    acceptor::NtlmAcceptor,
    keys::Key16,
) {
    let mut server = acceptor::NtlmAcceptor::new("demo", "s3cret");
    let negotiate = messages::negotiate(CLIENT_FLAGS & !flags::KEY_EXCH);
    let Step::Continue(challenge) = server.step(Some(&negotiate)).unwrap() else {
        panic!("a CHALLENGE answers the NEGOTIATE")
    };
    let challenge = messages::parse_challenge(&challenge).unwrap();
    assert_eq!(challenge.flags & flags::KEY_EXCH, 0);
    let response_key = keys::ntowf_v2(&keys::nt_hash("s3cret"), "demo", "");
    // Its MsvAvFlags say nothing of a MIC.
    let mut pairs = AvPairs::parse(&challenge.target_info).unwrap();
    pairs.set(av::FLAGS, 0u32.to_le_bytes().to_vec());
    let blob = keys::client_blob([0; 8], [9; 8], &pairs.encode());
    let proof = keys::nt_proof(&response_key, &challenge.server_challenge, &blob);
    let message = Authenticate {
        lm_response: vec![0; 24],
        nt_response: nt_response.unwrap_or_else(|| [&proof[..], &blob].concat()),
        domain: Vec::new(),
        user: utf16("demo"),
        workstation: utf16("OLD"),
        encrypted_session_key: Vec::new(),
        flags: challenge.flags & !flags::OEM,
        version: None,
        mic: None,
    };
    let verdict = server.step(Some(&message.encode()));
    (
        verdict,
        server,
        keys::session_base_key(&response_key, &proof),
    )
}

/// Such a client is admitted (Windows admits it), and the session key is then the key-exchange
/// key itself: what the acceptor seals, the client opens with it.
#[test]
fn the_acceptor_admits_a_client_without_key_exchange_or_mic() {
    let (verdict, mut server, session_key) = legacy_client(None);
    assert!(matches!(verdict, Ok(Step::Done(None))), "{verdict:?}");
    let sealed = server.seal(b"answer").unwrap();
    let mut keys = directions(&session_key, true);
    let mut data = sealed.data.clone();
    let range = open_established(Some(&mut keys), &sealed.header, &mut data).unwrap();
    assert_eq!(&data[range], b"answer");
}

/// An NT response too short to hold a proof and the blob's fixed part is not NTLMv2 (NTLMv1's
/// 24 bytes among them); one just long enough is checked, and its proof is wrong.
#[test]
fn an_nt_response_shorter_than_ntlmv2_is_refused_as_such() {
    for (length, said) in [
        (24, "not an NTLMv2 response"),
        (16 + 27, "not an NTLMv2 response"),
        (16 + 28, "wrong password"),
    ] {
        let (verdict, _, _) = legacy_client(Some(vec![1; length]));
        let e = verdict.unwrap_err();
        assert!(e.credentials_rejected, "{length}: {e:?}");
        assert_eq!(e.message, format!("NTLM: {said}"), "{length}");
    }
}

/// A CHALLENGE's target info and version are read only when its flags say they are there
/// (otherwise those bytes may be anything, or the payload).
#[test]
fn the_optional_fields_of_a_challenge_follow_its_flags() {
    let challenge = hex(CHALLENGE_MESSAGE);
    let parsed = messages::parse_challenge(&challenge).unwrap();
    assert_eq!(parsed.target_info, hex(TARGET_INFO));
    assert!(parsed.version.is_some());
    let mut without = challenge.clone();
    let offered = u32::from_le_bytes(without[20..24].try_into().unwrap());
    let offered = offered & !(flags::TARGET_INFO | flags::VERSION);
    without[20..24].copy_from_slice(&offered.to_le_bytes());
    let parsed = messages::parse_challenge(&without).unwrap();
    assert_eq!((parsed.target_info, parsed.version), (Vec::new(), None));
}

/// At most 64 AV pairs are read: a hostile server cannot make the client copy an endless list.
#[test]
fn at_most_64_av_pairs_are_read() {
    let pairs = |n: u16| {
        let list = AvPairs((0..n).map(|i| (100 + i, vec![1])).collect());
        AvPairs::parse(&list.encode())
    };
    assert_eq!(pairs(64).unwrap().0.len(), 64);
    let e = pairs(65).unwrap_err();
    assert_eq!(e.message, "too many AV pairs");
}

/// An AUTHENTICATE's version and MIC are read only where they are: the version when flagged
/// and before the payload, the MIC when the payload starts after it; an empty field's offset
/// (which may point anywhere) does not move the payload's start.
#[test]
fn the_optional_fields_of_an_authenticate_are_found_where_they_are() {
    let mut client = NtlmClient::new(NtlmCredentials::new(&Credentials::new("u", "p")), "HTTP/h");
    client.step(None).unwrap();
    let Step::Done(Some(token)) = client.step(Some(&hex(CHALLENGE_MESSAGE))).unwrap() else {
        panic!("AUTHENTICATE ends the handshake")
    };
    let parsed = Authenticate::parse(&token).unwrap();
    assert!(parsed.version.is_some() && parsed.mic.is_some());
    assert!(parsed.domain.is_empty());

    let mut unflagged = token.clone();
    let flags = u32::from_le_bytes(unflagged[60..64].try_into().unwrap()) & !flags::VERSION;
    unflagged[60..64].copy_from_slice(&flags.to_le_bytes());
    let parsed = Authenticate::parse(&unflagged).unwrap();
    assert_eq!(parsed.version, None);
    assert_eq!(parsed.mic, Authenticate::parse(&token).unwrap().mic);

    let mut empty_domain_at_64 = token.clone();
    empty_domain_at_64[32..36].copy_from_slice(&64u32.to_le_bytes());
    let parsed = Authenticate::parse(&empty_domain_at_64).unwrap();
    assert!(parsed.version.is_some() && parsed.mic.is_some());

    let bare = Authenticate {
        version: None,
        mic: None,
        ..Authenticate::parse(&token).unwrap()
    }
    .encode();
    let parsed = Authenticate::parse(&bare).unwrap();
    assert_eq!((parsed.version, parsed.mic), (None, None));
    assert_ne!(parsed.flags & flags::VERSION, 0, "flagged, yet not there");
}
