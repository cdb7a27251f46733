//! `weaver operator crd`: the ConfigMapSync CRD as YAML, the same bytes the chart ships in
//! `charts/configmapsync-operator/crds/`.

use std::process::ExitCode;

use crate::cli::OperatorCommand;

pub fn run(command: &OperatorCommand) -> crate::Result<ExitCode> {
    match command {
        OperatorCommand::Crd => {
            super::write_stdout(crate::yaml::to_yaml_string(&crate::operator::crd()).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
