//! SCSI command descriptor blocks and the data they return, byte for byte as in SPC-4
//! (T10/BSR INCITS 513, r37): INQUIRY (§6.6), TEST UNIT READY (§6.37), PERSISTENT
//! RESERVE IN (§6.15) and OUT (§6.16), and the SCSI-2 RESERVE(6) / RELEASE(6) of SPC-2
//! (§7.21, §7.16). Pure: builders write into arrays, parsers take `&[u8]` and never panic
//! on short or hostile input.

/// Operation codes.
pub mod op {
    /// TEST UNIT READY.
    pub const TEST_UNIT_READY: u8 = 0x00;
    /// INQUIRY.
    pub const INQUIRY: u8 = 0x12;
    /// RESERVE(6) (SPC-2).
    pub const RESERVE_6: u8 = 0x16;
    /// RELEASE(6) (SPC-2).
    pub const RELEASE_6: u8 = 0x17;
    /// PERSISTENT RESERVE IN.
    pub const PERSISTENT_RESERVE_IN: u8 = 0x5e;
    /// PERSISTENT RESERVE OUT.
    pub const PERSISTENT_RESERVE_OUT: u8 = 0x5f;
}

/// PERSISTENT RESERVE IN service actions (SPC-4 table 167).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrIn {
    /// Every registered key.
    ReadKeys = 0x00,
    /// The reservation, if any.
    ReadReservation = 0x01,
    /// What the device server supports.
    ReportCapabilities = 0x02,
}

/// PERSISTENT RESERVE OUT service actions (SPC-4 table 174).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrOut {
    /// Register a key (or change or remove one: `key` must match the registered one).
    Register = 0x00,
    /// Take the reservation.
    Reserve = 0x01,
    /// Give it up.
    Release = 0x02,
    /// Remove every registration and the reservation.
    Clear = 0x03,
    /// Remove another registrant's key (and its reservation).
    Preempt = 0x04,
    /// Preempt, and abort the preempted registrant's outstanding commands.
    PreemptAndAbort = 0x05,
    /// Register whatever is registered now for this I_T nexus.
    RegisterAndIgnoreExistingKey = 0x06,
}

/// Persistent reservation types (SPC-4 table 169).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrType {
    /// Write Exclusive: only the holder writes.
    WriteExclusive = 0x1,
    /// Exclusive Access: only the holder reads or writes.
    ExclusiveAccess = 0x3,
    /// Write Exclusive – Registrants Only.
    WriteExclusiveRegistrantsOnly = 0x5,
    /// Exclusive Access – Registrants Only.
    ExclusiveAccessRegistrantsOnly = 0x6,
    /// Write Exclusive – All Registrants.
    WriteExclusiveAllRegistrants = 0x7,
    /// Exclusive Access – All Registrants.
    ExclusiveAccessAllRegistrants = 0x8,
}

impl PrType {
    /// The type for code `c`.
    pub fn from_code(c: u8) -> Option<PrType> {
        Some(match c {
            0x1 => PrType::WriteExclusive,
            0x3 => PrType::ExclusiveAccess,
            0x5 => PrType::WriteExclusiveRegistrantsOnly,
            0x6 => PrType::ExclusiveAccessRegistrantsOnly,
            0x7 => PrType::WriteExclusiveAllRegistrants,
            0x8 => PrType::ExclusiveAccessAllRegistrants,
            _ => return None,
        })
    }

    /// Bit of this type in REPORT CAPABILITIES' type mask (SPC-4 table 172).
    pub fn mask_bit(self) -> u16 {
        match self {
            PrType::WriteExclusive => 1 << 9,
            PrType::ExclusiveAccess => 1 << 11,
            PrType::WriteExclusiveRegistrantsOnly => 1 << 13,
            PrType::ExclusiveAccessRegistrantsOnly => 1 << 14,
            PrType::WriteExclusiveAllRegistrants => 1 << 15,
            PrType::ExclusiveAccessAllRegistrants => 1 << 0,
        }
    }
}

/// TEST UNIT READY (6 bytes, all zero but the opcode).
pub fn test_unit_ready() -> [u8; 6] {
    [op::TEST_UNIT_READY, 0, 0, 0, 0, 0]
}

/// Standard INQUIRY for `alloc` bytes.
pub fn inquiry(alloc: u16) -> [u8; 6] {
    let a = alloc.to_be_bytes();
    [op::INQUIRY, 0, 0, a[0], a[1], 0]
}

/// RESERVE(6): the whole logical unit, SCSI-2 style.
pub fn reserve6() -> [u8; 6] {
    [op::RESERVE_6, 0, 0, 0, 0, 0]
}

/// RELEASE(6).
pub fn release6() -> [u8; 6] {
    [op::RELEASE_6, 0, 0, 0, 0, 0]
}

/// PERSISTENT RESERVE IN with service action `sa`, for `alloc` bytes (SPC-4 §6.15.1:
/// allocation length in bytes 7–8).
pub fn pr_in(sa: PrIn, alloc: u16) -> [u8; 10] {
    let a = alloc.to_be_bytes();
    [
        op::PERSISTENT_RESERVE_IN,
        sa as u8,
        0,
        0,
        0,
        0,
        0,
        a[0],
        a[1],
        0,
    ]
}

/// Length of the basic PERSISTENT RESERVE OUT parameter list (SPC-4 §6.16.3).
pub const PR_OUT_PARAM_LEN: usize = 24;

/// PERSISTENT RESERVE OUT: the CDB (scope LU_SCOPE, `ty` in byte 2's low nibble,
/// parameter list length in bytes 5–8) and its 24-byte parameter list (reservation key,
/// service action reservation key, APTPL and the other flags 0).
pub fn pr_out(
    sa: PrOut,
    ty: Option<PrType>,
    key: u64,
    sa_key: u64,
) -> ([u8; 10], [u8; PR_OUT_PARAM_LEN]) {
    let len = u32::try_from(PR_OUT_PARAM_LEN)
        .expect("invariant: 24")
        .to_be_bytes();
    let cdb = [
        op::PERSISTENT_RESERVE_OUT,
        sa as u8,
        ty.map_or(0, |t| t as u8),
        0,
        0,
        len[0],
        len[1],
        len[2],
        len[3],
        0,
    ];
    let mut p = [0u8; PR_OUT_PARAM_LEN];
    p[0..8].copy_from_slice(&key.to_be_bytes());
    p[8..16].copy_from_slice(&sa_key.to_be_bytes());
    (cdb, p)
}

/// The data is shorter than its header says it must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated;

/// READ KEYS data: the generation and every registered key (SPC-4 §6.15.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// PRgeneration: bumped by every registration change.
    pub generation: u32,
    /// Registered keys, in the device's order.
    pub keys: Vec<u64>,
    /// The device has more keys than the buffer held (ask again with a larger one).
    pub truncated: bool,
}

/// Parses READ KEYS data.
pub fn parse_keys(d: &[u8]) -> Result<Keys, Truncated> {
    let (generation, len) = pr_header(d)?;
    let body = &d[8..];
    let have = body.len().min(len) / 8 * 8;
    Ok(Keys {
        generation,
        keys: body[..have]
            .chunks_exact(8)
            .map(|k| u64::from_be_bytes(k.try_into().expect("invariant: 8")))
            .collect(),
        truncated: have < len,
    })
}

/// A reservation as READ RESERVATION reports it (SPC-4 §6.15.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The holder's key.
    pub key: u64,
    /// Its type (`None`: a code this parser does not know).
    pub ty: Option<PrType>,
    /// The raw scope and type byte.
    pub scope_type: u8,
}

/// Parses READ RESERVATION data: the generation and the reservation, if one is held.
pub fn parse_reservation(d: &[u8]) -> Result<(u32, Option<Reservation>), Truncated> {
    let (generation, len) = pr_header(d)?;
    if len == 0 {
        return Ok((generation, None));
    }
    if len < 16 || d.len() < 24 {
        return Err(Truncated);
    }
    Ok((
        generation,
        Some(Reservation {
            key: u64::from_be_bytes(d[8..16].try_into().expect("invariant: 8")),
            ty: PrType::from_code(d[21] & 0x0f),
            scope_type: d[21],
        }),
    ))
}

/// REPORT CAPABILITIES data (SPC-4 §6.15.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Compatible Reservation Handling (RESERVE(6)/RELEASE(6) interplay).
    pub crh: bool,
    /// Persist Through Power Loss Capable (APTPL may be set).
    pub ptpl_capable: bool,
    /// The type mask is valid.
    pub type_mask_valid: bool,
    /// Supported types (see [`PrType::mask_bit`]).
    pub type_mask: u16,
}

impl Capabilities {
    /// Whether `ty` is reported supported (true when the mask is not valid: unknown).
    pub fn supports(&self, ty: PrType) -> bool {
        !self.type_mask_valid || self.type_mask & ty.mask_bit() != 0
    }
}

/// Parses REPORT CAPABILITIES data.
pub fn parse_capabilities(d: &[u8]) -> Result<Capabilities, Truncated> {
    if d.len() < 6 {
        return Err(Truncated);
    }
    Ok(Capabilities {
        crh: d[2] & 0x10 != 0,
        ptpl_capable: d[2] & 0x01 != 0,
        type_mask_valid: d[3] & 0x80 != 0,
        type_mask: u16::from_be_bytes([d[4], d[5]]),
    })
}

/// Standard INQUIRY data, the fields an operator recognises a disk by (SPC-4 §6.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inquiry {
    /// Peripheral device type (0: direct access block device).
    pub device_type: u8,
    /// SPC version claimed (6 = SPC-4).
    pub version: u8,
    /// T10 vendor identification.
    pub vendor: String,
    /// Product identification.
    pub product: String,
    /// Product revision level.
    pub revision: String,
}

/// Parses standard INQUIRY data (at least 36 bytes).
pub fn parse_inquiry(d: &[u8]) -> Result<Inquiry, Truncated> {
    if d.len() < 36 {
        return Err(Truncated);
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim_end().to_owned();
    Ok(Inquiry {
        device_type: d[0] & 0x1f,
        version: d[2],
        vendor: text(&d[8..16]),
        product: text(&d[16..32]),
        revision: text(&d[32..36]),
    })
}

/// PRgeneration and additional length of persistent-reservation IN data.
fn pr_header(d: &[u8]) -> Result<(u32, usize), Truncated> {
    if d.len() < 8 {
        return Err(Truncated);
    }
    let generation = u32::from_be_bytes(d[0..4].try_into().expect("invariant: 4"));
    let len = u32::from_be_bytes(d[4..8].try_into().expect("invariant: 4"));
    Ok((generation, usize::try_from(len).unwrap_or(usize::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdbs_match_spc4() {
        assert_eq!(test_unit_ready(), [0, 0, 0, 0, 0, 0]);
        assert_eq!(inquiry(96), [0x12, 0, 0, 0, 96, 0]);
        assert_eq!(reserve6(), [0x16, 0, 0, 0, 0, 0]);
        assert_eq!(release6(), [0x17, 0, 0, 0, 0, 0]);
        // PERSISTENT RESERVE IN, READ KEYS, 4096 bytes: allocation length in bytes 7–8.
        assert_eq!(
            pr_in(PrIn::ReadKeys, 4096),
            [0x5e, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]
        );
        assert_eq!(pr_in(PrIn::ReadReservation, 24)[1], 1);
        assert_eq!(pr_in(PrIn::ReportCapabilities, 8)[1], 2);
    }

    #[test]
    fn pr_out_register_reserve_preempt() {
        let key = 0x1092_0000_0000_0001;
        // REGISTER: key 0 (none yet), service action key = ours, no type.
        let (cdb, p) = pr_out(PrOut::Register, None, 0, key);
        assert_eq!(cdb, [0x5f, 0x00, 0x00, 0, 0, 0, 0, 0, 24, 0]);
        assert_eq!(&p[0..8], &[0; 8]);
        assert_eq!(&p[8..16], &key.to_be_bytes());
        assert_eq!(&p[16..24], &[0; 8], "APTPL and the other flags are 0");
        // RESERVE, Write Exclusive – Registrants Only: type 5 in byte 2, scope 0.
        let (cdb, p) = pr_out(
            PrOut::Reserve,
            Some(PrType::WriteExclusiveRegistrantsOnly),
            key,
            0,
        );
        assert_eq!(cdb[..3], [0x5f, 0x01, 0x05]);
        assert_eq!(&p[0..8], &key.to_be_bytes());
        // PREEMPT AND ABORT the key 0x...02.
        let (cdb, p) = pr_out(
            PrOut::PreemptAndAbort,
            Some(PrType::WriteExclusiveRegistrantsOnly),
            key,
            0x1092_0000_0000_0002,
        );
        assert_eq!(cdb[..3], [0x5f, 0x05, 0x05]);
        assert_eq!(&p[8..16], &0x1092_0000_0000_0002u64.to_be_bytes());
        let codes: Vec<u8> = [
            PrOut::Register,
            PrOut::Reserve,
            PrOut::Release,
            PrOut::Clear,
            PrOut::Preempt,
            PrOut::PreemptAndAbort,
            PrOut::RegisterAndIgnoreExistingKey,
        ]
        .iter()
        .map(|&sa| pr_out(sa, None, 0, 0).0[1])
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn read_keys_data() {
        let mut d = vec![0, 0, 0, 7, 0, 0, 0, 16];
        d.extend_from_slice(&1u64.to_be_bytes());
        d.extend_from_slice(&2u64.to_be_bytes());
        assert_eq!(
            parse_keys(&d),
            Ok(Keys {
                generation: 7,
                keys: vec![1, 2],
                truncated: false
            })
        );
        // The device has three keys, the buffer held two and a half.
        d[7] = 24;
        d.extend_from_slice(&[9, 9, 9, 9]);
        let k = parse_keys(&d).unwrap();
        assert_eq!((k.keys.len(), k.truncated), (2, true));
        assert_eq!(parse_keys(&[0; 7]), Err(Truncated));
        assert_eq!(
            parse_keys(&[0, 0, 0, 1, 0, 0, 0, 0]).unwrap().keys,
            Vec::<u64>::new()
        );
    }

    #[test]
    fn read_reservation_data() {
        assert_eq!(parse_reservation(&[0, 0, 0, 3, 0, 0, 0, 0]), Ok((3, None)));
        let mut d = vec![0, 0, 0, 4, 0, 0, 0, 16];
        d.extend_from_slice(&0xabu64.to_be_bytes());
        d.extend_from_slice(&[0, 0, 0, 0, 0, 0x05, 0, 0]);
        assert_eq!(
            parse_reservation(&d),
            Ok((
                4,
                Some(Reservation {
                    key: 0xab,
                    ty: Some(PrType::WriteExclusiveRegistrantsOnly),
                    scope_type: 5
                })
            ))
        );
        assert_eq!(parse_reservation(&d[..20]), Err(Truncated));
    }

    #[test]
    fn capabilities_and_inquiry() {
        // tgtd's answer: length 8, PTPL_C, TMV, WE/EA/WERO/EARO/WEAR/EAAR.
        let c = parse_capabilities(&[0, 8, 0x01, 0x80, 0xea, 0x01, 0, 0]).unwrap();
        assert!(c.ptpl_capable && c.type_mask_valid && !c.crh);
        assert!(c.supports(PrType::WriteExclusiveRegistrantsOnly));
        assert!(c.supports(PrType::ExclusiveAccessAllRegistrants));
        let none = parse_capabilities(&[0, 8, 0, 0x80, 0, 0]).unwrap();
        assert!(!none.supports(PrType::WriteExclusive));
        assert_eq!(parse_capabilities(&[0; 5]), Err(Truncated));
        let mut d = vec![0u8; 36];
        d[2] = 6;
        d[8..16].copy_from_slice(b"IET     ");
        d[16..32].copy_from_slice(b"VIRTUAL-DISK    ");
        d[32..36].copy_from_slice(b"0001");
        let i = parse_inquiry(&d).unwrap();
        assert_eq!(
            (
                i.device_type,
                i.version,
                i.vendor.as_str(),
                i.product.as_str(),
                i.revision.as_str()
            ),
            (0, 6, "IET", "VIRTUAL-DISK", "0001")
        );
        assert_eq!(parse_inquiry(&d[..35]), Err(Truncated));
    }
}
