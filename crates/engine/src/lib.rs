pub mod action;
pub mod apply;
pub mod notify;
pub mod observe;
pub mod report;
pub mod schedule;
