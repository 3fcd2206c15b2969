//! Injected faults: "the next N dual-write writes to one side (optionally one table) fail
//! with this product error". Tests use them to drive the rollback path of live sync with
//! errors the real products send, without having to craft data that fails naturally.
//!
//! A fault fires only where dual-write would really write the counterpart row (a create, a
//! patch that changes something, a delete of an existing row), so an update that changes no
//! mapped field, or a paused map's queued change, consumes nothing. The plan lives outside
//! the stores, so a fired fault stays consumed when its transaction rolls back.

use crate::error::{ErrorKind, SimError};
use crate::schema::Side;
use serde::{Deserialize, Serialize};

/// The product errors a fault can raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// Dataverse `0x80040265` (IsvAborted): a plug-in on the table threw.
    PluginFailure,
    /// Dataverse `0x80072322`: service protection, number of requests.
    Throttling,
    /// F&O: the write fails in the Unit of Work with an Infolog error.
    InfologWriteFailure,
}

impl FaultKind {
    /// Which side's error this is: Dataverse errors for Dataverse writes, Infolog for F&O.
    pub fn side(self) -> Side {
        match self {
            FaultKind::PluginFailure | FaultKind::Throttling => Side::Dataverse,
            FaultKind::InfologWriteFailure => Side::Fno,
        }
    }
}

/// One planned fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The side whose dual-write writes fail.
    pub side: Side,
    /// Only writes to this table: a Dataverse logical name or entity set
    /// (`msdyn_customergroup`, `msdyn_customergroups`), or an F&O entity set or class
    /// (`CustomerGroups`, `CustCustomerGroupEntity`). None: every table of that side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Writes left to fail; the fault leaves the plan when it reaches 0.
    pub count: u32,
    /// The error it raises.
    pub kind: FaultKind,
    /// The error message; None gives the product's usual text for `kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Fault {
    /// The error the failing write answers, in the product's words.
    pub fn error(&self) -> SimError {
        let message = |default: &str| self.message.clone().unwrap_or_else(|| default.into());
        match self.kind {
            FaultKind::PluginFailure => SimError::new(
                ErrorKind::BadRequest,
                "0x80040265",
                message("ISV code aborted the operation."),
            ),
            FaultKind::Throttling => SimError::new(
                ErrorKind::Throttled(300),
                "0x80072322",
                message("Number of requests exceeded the limit of 6000 over time window of 300 seconds."),
            ),
            FaultKind::InfologWriteFailure => SimError::new(
                ErrorKind::WriteFailed,
                "",
                message("Cannot save the changes to the database. Unit of Work can not commit transaction."),
            ),
        }
    }
}

/// A fault plan that cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultPlanError {
    /// A fault with a count of 0 would never fire.
    #[error("fault {index}: count must be at least 1")]
    NeverFires {
        /// The fault's place in the plan.
        index: usize,
    },
    /// A fault raising one product's error on the other product.
    #[error("fault {index}: {kind:?} is not an error of side {side:?}")]
    WrongSide {
        /// The fault's place in the plan.
        index: usize,
        /// The error it would raise.
        kind: FaultKind,
        /// The side it was planned for.
        side: Side,
    },
    /// A fault for a table its side does not have: it could never fire.
    #[error("fault {index}: {side:?} has no table '{table}'")]
    UnknownTable {
        /// The fault's place in the plan.
        index: usize,
        /// The table named.
        table: String,
        /// The side it was planned for.
        side: Side,
    },
}

/// The faults still to fire, in the order they were planned. A plan is read strictly: a
/// mistyped field (`{"fault": [...]}`) is refused rather than read as an empty plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPlan {
    /// The faults, in the order they fire.
    pub faults: Vec<Fault>,
}

impl FaultPlan {
    /// Refuses plans that could never fire or mix products' errors.
    pub fn validate(&self) -> Result<(), FaultPlanError> {
        for (i, f) in self.faults.iter().enumerate() {
            if f.count == 0 {
                return Err(FaultPlanError::NeverFires { index: i });
            }
            if f.kind.side() != f.side {
                return Err(FaultPlanError::WrongSide {
                    index: i,
                    kind: f.kind,
                    side: f.side,
                });
            }
        }
        Ok(())
    }

    /// Refuses faults for tables their side does not have (a Dataverse logical name or entity
    /// set, an F&O entity set or entity class, ignoring case).
    pub fn check_tables(&self, catalogue: &crate::Catalogue) -> Result<(), FaultPlanError> {
        for (index, f) in self.faults.iter().enumerate() {
            let Some(table) = &f.table else { continue };
            let known = match f.side {
                Side::Dataverse => catalogue.dv_tables.values().any(|t| {
                    t.logical_name.eq_ignore_ascii_case(table)
                        || t.entity_set.eq_ignore_ascii_case(table)
                }),
                Side::Fno => catalogue.fno_entities.values().any(|e| {
                    e.entity_set.eq_ignore_ascii_case(table)
                        || e.entity_class.eq_ignore_ascii_case(table)
                }),
            };
            if !known {
                return Err(FaultPlanError::UnknownTable {
                    index,
                    table: table.clone(),
                    side: f.side,
                });
            }
        }
        Ok(())
    }

    /// Called just before dual-write writes a row of `tables` (the names it goes by) on
    /// `side`: the first matching fault fires, is counted down, and its error is answered.
    pub fn check(&mut self, side: Side, tables: &[&str]) -> Result<(), SimError> {
        let Some(i) = self.faults.iter().position(|f| {
            f.side == side
                && f.table
                    .as_ref()
                    .is_none_or(|t| tables.iter().any(|n| n.eq_ignore_ascii_case(t)))
        }) else {
            return Ok(());
        };
        let error = self.faults[i].error();
        self.faults[i].count -= 1;
        if self.faults[i].count == 0 {
            self.faults.remove(i);
        }
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(side: Side, table: Option<&str>, count: u32, kind: FaultKind) -> Fault {
        Fault {
            side,
            table: table.map(str::to_string),
            count,
            kind,
            message: None,
        }
    }

    #[test]
    fn fires_count_times_on_matching_writes_only() {
        let mut plan = FaultPlan {
            faults: vec![fault(
                Side::Dataverse,
                Some("msdyn_customergroups"),
                2,
                FaultKind::PluginFailure,
            )],
        };
        assert!(plan.check(Side::Fno, &["CustomerGroups"]).is_ok());
        assert!(plan
            .check(Side::Dataverse, &["account", "accounts"])
            .is_ok());
        let names = ["msdyn_customergroup", "msdyn_customergroups"];
        assert_eq!(
            plan.check(Side::Dataverse, &names).unwrap_err().code,
            "0x80040265"
        );
        assert!(plan.check(Side::Dataverse, &names).is_err());
        assert!(plan.check(Side::Dataverse, &names).is_ok());
        assert!(plan.faults.is_empty());
    }

    #[test]
    fn refuses_a_dataverse_error_on_fno() {
        let plan = FaultPlan {
            faults: vec![fault(Side::Fno, None, 1, FaultKind::Throttling)],
        };
        assert!(plan.validate().is_err());
        let plan = FaultPlan {
            faults: vec![fault(Side::Fno, None, 0, FaultKind::InfologWriteFailure)],
        };
        assert!(plan.validate().is_err());
    }
}
