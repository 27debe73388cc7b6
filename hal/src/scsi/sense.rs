//! How a SCSI command ended, decoded into one typed error: the SCSI status (SAM-5
//! table 43), sense data in fixed (SPC-4 §4.5.3, response codes 70h/71h) and descriptor
//! format (§4.5.2, 72h/73h), and the Linux SG host and driver codes
//! (`include/scsi/scsi_status.h`, `scsi/sg.h`). Pure: nothing here touches a device.

use core::fmt;

/// SCSI status codes.
pub mod status {
    /// GOOD.
    pub const GOOD: u8 = 0x00;
    /// CHECK CONDITION: sense data says why.
    pub const CHECK_CONDITION: u8 = 0x02;
    /// CONDITION MET.
    pub const CONDITION_MET: u8 = 0x04;
    /// BUSY.
    pub const BUSY: u8 = 0x08;
    /// RESERVATION CONFLICT.
    pub const RESERVATION_CONFLICT: u8 = 0x18;
    /// TASK SET FULL.
    pub const TASK_SET_FULL: u8 = 0x28;
    /// ACA ACTIVE.
    pub const ACA_ACTIVE: u8 = 0x30;
    /// TASK ABORTED.
    pub const TASK_ABORTED: u8 = 0x40;
}

/// Sense keys (SPC-4 table 27).
pub mod key {
    /// NO SENSE.
    pub const NO_SENSE: u8 = 0x0;
    /// RECOVERED ERROR.
    pub const RECOVERED_ERROR: u8 = 0x1;
    /// NOT READY.
    pub const NOT_READY: u8 = 0x2;
    /// MEDIUM ERROR.
    pub const MEDIUM_ERROR: u8 = 0x3;
    /// HARDWARE ERROR.
    pub const HARDWARE_ERROR: u8 = 0x4;
    /// ILLEGAL REQUEST.
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    /// UNIT ATTENTION.
    pub const UNIT_ATTENTION: u8 = 0x6;
    /// DATA PROTECT.
    pub const DATA_PROTECT: u8 = 0x7;
    /// ABORTED COMMAND.
    pub const ABORTED_COMMAND: u8 = 0xb;
}

/// The decoded core of sense data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    /// Sense key.
    pub key: u8,
    /// Additional sense code.
    pub asc: u8,
    /// Additional sense code qualifier.
    pub ascq: u8,
    /// The sense data was in descriptor format.
    pub descriptor: bool,
}

impl Sense {
    /// Decodes fixed or descriptor format sense data; `None` for an empty buffer or an
    /// unknown response code.
    pub fn parse(b: &[u8]) -> Option<Sense> {
        let code = *b.first()? & 0x7f;
        match code {
            0x70 | 0x71 => Some(Sense {
                key: b.get(2).map_or(0, |k| k & 0x0f),
                // The additional length (byte 7) may cut ASC/ASCQ off: they read as 0.
                asc: *b.get(12).unwrap_or(&0),
                ascq: *b.get(13).unwrap_or(&0),
                descriptor: false,
            }),
            0x72 | 0x73 => Some(Sense {
                key: b.get(1).map_or(0, |k| k & 0x0f),
                asc: *b.get(2).unwrap_or(&0),
                ascq: *b.get(3).unwrap_or(&0),
                descriptor: true,
            }),
            _ => None,
        }
    }

    /// UNIT ATTENTION: the device tells of an event (reset, reservations changed, ...).
    /// The command was not executed; retrying it is right once the cause is handled.
    pub fn is_unit_attention(&self) -> bool {
        self.key == key::UNIT_ATTENTION
    }

    /// UNIT ATTENTION 2A/03 "reservations preempted", 2A/04 "reservations released",
    /// 2A/05 "registrations preempted", or 29/xx (power on, reset, I_T nexus loss): this
    /// node's registration may be gone and must be made again.
    pub fn registration_lost(&self) -> bool {
        self.is_unit_attention()
            && ((self.asc == 0x2a && matches!(self.ascq, 0x03..=0x05)) || self.asc == 0x29)
    }

    /// What the ASC/ASCQ pair means, for the ones a reservation layer meets.
    pub fn meaning(&self) -> &'static str {
        match (self.asc, self.ascq) {
            (0x04, 0x01) => "logical unit is in process of becoming ready",
            (0x04, _) => "logical unit not ready",
            (0x20, 0x00) => "invalid command operation code",
            (0x24, 0x00) => "invalid field in CDB",
            (0x25, 0x00) => "logical unit not supported",
            (0x26, 0x00) => "invalid field in parameter list",
            (0x29, 0x00) => "power on, reset, or bus device reset occurred",
            (0x29, 0x07) => "I_T nexus loss occurred",
            (0x29, _) => "power on or reset occurred",
            (0x2a, 0x01) => "mode parameters changed",
            (0x2a, 0x03) => "reservations preempted",
            (0x2a, 0x04) => "reservations released",
            (0x2a, 0x05) => "registrations preempted",
            (0x2a, 0x09) => "capacity data has changed",
            (0x3a, _) => "medium not present",
            (0x3f, 0x0e) => "reported LUNs data has changed",
            _ => "see SPC-4 annex D",
        }
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = match self.key {
            key::NO_SENSE => "NO SENSE",
            key::RECOVERED_ERROR => "RECOVERED ERROR",
            key::NOT_READY => "NOT READY",
            key::MEDIUM_ERROR => "MEDIUM ERROR",
            key::HARDWARE_ERROR => "HARDWARE ERROR",
            key::ILLEGAL_REQUEST => "ILLEGAL REQUEST",
            key::UNIT_ATTENTION => "UNIT ATTENTION",
            key::DATA_PROTECT => "DATA PROTECT",
            key::ABORTED_COMMAND => "ABORTED COMMAND",
            _ => "sense key",
        };
        write!(
            f,
            "{key} ({:x}h) {:02X}h/{:02X}h: {}",
            self.key,
            self.asc,
            self.ascq,
            self.meaning()
        )
    }
}

/// Why a SCSI command did not complete with GOOD status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScsiError {
    /// RESERVATION CONFLICT: another initiator holds a reservation that forbids this
    /// command (or this node is not registered).
    #[error("RESERVATION CONFLICT")]
    ReservationConflict,
    /// CHECK CONDITION with sense data.
    #[error("CHECK CONDITION: {0}")]
    Check(Sense),
    /// CHECK CONDITION without usable sense data.
    #[error("CHECK CONDITION without sense data")]
    CheckNoSense,
    /// BUSY, TASK SET FULL or ACA ACTIVE: try again later.
    #[error("device busy (status {0:02x}h)")]
    Busy(u8),
    /// TASK ABORTED (another initiator's PREEMPT AND ABORT, or a reset).
    #[error("TASK ABORTED")]
    Aborted,
    /// Any other status.
    #[error("SCSI status {0:02x}h")]
    Status(u8),
    /// The host adapter (or the transport: iSCSI, FC) failed the command.
    #[error("host adapter: {name} ({code:#x})")]
    Host {
        /// `DID_*` code.
        code: u16,
        /// Its name.
        name: &'static str,
    },
    /// The command timed out (the SG layer's timeout).
    #[error("timed out")]
    Timeout,
    /// The SG driver reported an error it did not explain further.
    #[error("driver status {0:#x}")]
    Driver(u16),
}

impl ScsiError {
    /// The sense data, if the command ended with CHECK CONDITION.
    pub fn sense(&self) -> Option<&Sense> {
        match self {
            ScsiError::Check(s) => Some(s),
            _ => None,
        }
    }
}

/// Linux SG host status codes (`DID_*`).
pub fn host_name(code: u16) -> &'static str {
    match code {
        0x00 => "DID_OK",
        0x01 => "DID_NO_CONNECT: no connection to the target",
        0x02 => "DID_BUS_BUSY",
        0x03 => "DID_TIME_OUT",
        0x04 => "DID_BAD_TARGET",
        0x05 => "DID_ABORT",
        0x06 => "DID_PARITY",
        0x07 => "DID_ERROR: internal error",
        0x08 => "DID_RESET",
        0x09 => "DID_BAD_INTR",
        0x0a => "DID_PASSTHROUGH",
        0x0b => "DID_SOFT_ERROR",
        0x0c => "DID_IMM_RETRY",
        0x0d => "DID_REQUEUE",
        0x0e => "DID_TRANSPORT_DISRUPTED: the transport (iSCSI, FC) was lost",
        0x0f => "DID_TRANSPORT_FAILFAST",
        0x10 => "DID_TARGET_FAILURE",
        0x11 => "DID_NEXUS_FAILURE: the I_T nexus is gone (reservation conflict on reconnect)",
        0x12 => "DID_ALLOC_FAILURE",
        0x13 => "DID_MEDIUM_ERROR",
        0x14 => "DID_TRANSPORT_MARGINAL",
        _ => "unknown host status",
    }
}

/// SG driver status: the low nibble (`DRIVER_*`); the high nibble carries suggestions.
const DRIVER_TIMEOUT: u16 = 0x06;
const DRIVER_SENSE: u16 = 0x08;

/// Decodes one completed SG command: `status` (the SCSI status byte), `host` and
/// `driver` from the SG header, and the sense bytes written. `Ok(())` means GOOD (or
/// CONDITION MET).
pub fn decode(status: u8, host: u16, driver: u16, sense: &[u8]) -> Result<(), ScsiError> {
    if host == 0x03 || driver & 0x0f == DRIVER_TIMEOUT {
        return Err(ScsiError::Timeout);
    }
    if host != 0 {
        return Err(ScsiError::Host {
            code: host,
            name: host_name(host),
        });
    }
    match status & 0xfe {
        status::GOOD | status::CONDITION_MET => {}
        status::CHECK_CONDITION => {
            return Err(Sense::parse(sense).map_or(ScsiError::CheckNoSense, ScsiError::Check));
        }
        status::RESERVATION_CONFLICT => return Err(ScsiError::ReservationConflict),
        s @ (status::BUSY | status::TASK_SET_FULL | status::ACA_ACTIVE) => {
            return Err(ScsiError::Busy(s));
        }
        status::TASK_ABORTED => return Err(ScsiError::Aborted),
        s => return Err(ScsiError::Status(s)),
    }
    // GOOD with sense data left by the driver (DRIVER_SENSE): a deferred error.
    if driver & 0x0f == DRIVER_SENSE {
        if let Some(s) =
            Sense::parse(sense).filter(|s| s.key != key::NO_SENSE && s.key != key::RECOVERED_ERROR)
        {
            return Err(ScsiError::Check(s));
        }
    }
    if driver & 0x0f != 0 && driver & 0x0f != DRIVER_SENSE {
        return Err(ScsiError::Driver(driver));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixed-format sense, SPC-4 figure 15: response code 70h, sense key in byte 2,
    /// additional length in byte 7, ASC/ASCQ in bytes 12/13.
    fn fixed(k: u8, asc: u8, ascq: u8) -> [u8; 18] {
        let mut b = [0u8; 18];
        b[0] = 0x70;
        b[2] = k;
        b[7] = 10;
        b[12] = asc;
        b[13] = ascq;
        b
    }

    #[test]
    fn fixed_and_descriptor_sense() {
        let s = Sense::parse(&fixed(6, 0x2a, 0x03)).unwrap();
        assert_eq!((s.key, s.asc, s.ascq, s.descriptor), (6, 0x2a, 3, false));
        assert!(s.is_unit_attention() && s.registration_lost());
        assert_eq!(
            s.to_string(),
            "UNIT ATTENTION (6h) 2Ah/03h: reservations preempted"
        );
        // Valid bit set (F0h) and deferred errors (71h) are still fixed format.
        let mut b = fixed(5, 0x24, 0);
        b[0] = 0xf1;
        assert_eq!(Sense::parse(&b).unwrap().asc, 0x24);
        // Descriptor format, SPC-4 figure 14: 72h, key in byte 1, ASC/ASCQ in 2/3.
        let d = [0x72, 0x06, 0x29, 0x07, 0, 0, 0, 0];
        let s = Sense::parse(&d).unwrap();
        assert_eq!((s.key, s.asc, s.ascq, s.descriptor), (6, 0x29, 7, true));
        assert!(s.registration_lost(), "I_T nexus loss: register again");
        assert_eq!(Sense::parse(&[]), None);
        assert_eq!(Sense::parse(&[0x7f, 1, 2]), None, "vendor response code");
        // Truncated fixed sense: ASC/ASCQ missing read as 0, never a panic.
        let s = Sense::parse(&[0x70, 0, 0x02]).unwrap();
        assert_eq!((s.key, s.asc, s.ascq), (2, 0, 0));
        assert!(
            !Sense::parse(&fixed(5, 0x24, 0))
                .unwrap()
                .registration_lost()
        );
    }

    #[test]
    fn status_host_and_driver() {
        assert_eq!(decode(0, 0, 0, &[]), Ok(()));
        assert_eq!(decode(0x18, 0, 0, &[]), Err(ScsiError::ReservationConflict));
        assert_eq!(
            decode(0x02, 0, 0x08, &fixed(6, 0x2a, 0x04)),
            Err(ScsiError::Check(Sense {
                key: 6,
                asc: 0x2a,
                ascq: 4,
                descriptor: false
            }))
        );
        assert_eq!(decode(0x02, 0, 0, &[]), Err(ScsiError::CheckNoSense));
        assert_eq!(decode(0x08, 0, 0, &[]), Err(ScsiError::Busy(0x08)));
        assert_eq!(decode(0x28, 0, 0, &[]), Err(ScsiError::Busy(0x28)));
        assert_eq!(decode(0x40, 0, 0, &[]), Err(ScsiError::Aborted));
        assert_eq!(decode(0x22, 0, 0, &[]), Err(ScsiError::Status(0x22)));
        assert_eq!(decode(0, 0x03, 0, &[]), Err(ScsiError::Timeout));
        assert_eq!(decode(0, 0, 0x06, &[]), Err(ScsiError::Timeout));
        let e = decode(0, 0x0e, 0, &[]).unwrap_err();
        assert!(e.to_string().contains("DID_TRANSPORT_DISRUPTED"), "{e}");
        assert_eq!(decode(0, 0, 0x04, &[]), Err(ScsiError::Driver(4)));
        // GOOD with a deferred error in the sense buffer.
        assert!(decode(0, 0, 0x08, &fixed(3, 0x11, 0)).is_err());
        assert_eq!(decode(0, 0, 0x08, &fixed(1, 0x17, 0)), Ok(()), "recovered");
    }
}
