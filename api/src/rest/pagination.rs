//! `page` / `per_page` query parameters: page ≥ 1, 1 ≤ per_page ≤ 100
//! (default 50); anything else is a 422 naming the parameter. A page is a
//! u32, so the offset it asks for, under 2³⁹, always fits the database's
//! i64 (`page=9223372036854775807` is a 422, not a wrapped offset).

use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page number, from 1.
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

impl PageQuery {
    pub const DEFAULT_PER_PAGE: u32 = 50;
    pub const MAX_PER_PAGE: u32 = 100;

    pub fn new(page: Option<String>, per_page: Option<String>) -> Self {
        Self {
            page,
            per_page,
            consistency: None,
        }
    }

    /// The page asked for, as the read models take it.
    pub fn paging(&self) -> Result<palisade_infra::readmodel::PageRequest, ApiError> {
        let (page, per_page) = self.parse()?;
        Ok(palisade_infra::readmodel::PageRequest { page, per_page })
    }

    /// `(page, per_page)`.
    pub fn parse(&self) -> Result<(u32, u32), ApiError> {
        let number = |field: &str, value: &Option<String>, default: u32, max: u32| {
            let Some(text) = value else {
                return Ok(default);
            };
            text.parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        field,
                        format!("must be a whole number from 1 to {max}"),
                    )
                })
        };
        Ok((
            number("page", &self.page, 1, u32::MAX)?,
            number(
                "per_page",
                &self.per_page,
                Self::DEFAULT_PER_PAGE,
                Self::MAX_PER_PAGE,
            )?,
        ))
    }
}
