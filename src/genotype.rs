//! Genotypes: a derived cell pair in the form the DARTS/NASP training scripts read, its text
//! form (printer and parser) and JSON. `arch::derive_genotype` makes one from A.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::space::{CellType, OpLists};

/// DARTS_V2, the cell the DARTS paper reports (second-order search on CIFAR-10), in the text
/// form: the default of `bench --train` and the genotype of the parameter-count checks.
pub const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

/// A genotype text or JSON that does not parse; the message says where and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GenotypeError(pub String);

/// A derived cell pair in the DARTS `Genotype` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genotype {
    pub normal: Vec<(String, usize)>,
    pub normal_concat: Vec<usize>,
    pub reduce: Vec<(String, usize)>,
    pub reduce_concat: Vec<usize>,
}

impl Genotype {
    /// A NAS-Bench-201 cell as a genotype: `normal` holds its six edges as (op, source node),
    /// in the benchmark's edge order, `normal_concat` its output node (3); no reduction cell.
    /// Printed (and parsed) as the benchmark's string.
    pub fn nb201(cell: &crate::nb201::Cell) -> Genotype {
        Genotype {
            normal: crate::nb201::EDGES
                .iter()
                .zip(cell.names())
                .map(|(&(_, src), op)| (op.to_string(), src))
                .collect(),
            normal_concat: vec![crate::nb201::NODES],
            reduce: Vec::new(),
            reduce_concat: Vec::new(),
        }
    }

    /// The NAS-Bench-201 cell this genotype is, if it is one (see [`Genotype::nb201`]).
    pub fn nb201_cell(&self) -> Option<crate::nb201::Cell> {
        let shape_ok = self.reduce.is_empty()
            && self.reduce_concat.is_empty()
            && self.normal_concat == [crate::nb201::NODES]
            && self.normal.len() == crate::nb201::EDGES.len()
            && self
                .normal
                .iter()
                .zip(crate::nb201::EDGES)
                .all(|((_, src), (_, want))| *src == want);
        if !shape_ok {
            return None;
        }
        let names: Vec<&str> = self.normal.iter().map(|(o, _)| o.as_str()).collect();
        crate::nb201::Cell::from_names(&names)
    }

    /// The genotype as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses the JSON form.
    pub fn from_json(s: &str) -> Result<Genotype, GenotypeError> {
        serde_json::from_str(s).map_err(|e| GenotypeError(e.to_string()))
    }

    /// Parses the DARTS text form. Accepts `range(a, b)` concats, either quote style, op names
    /// with spaces, and any white space.
    pub fn parse(s: &str) -> Result<Genotype, GenotypeError> {
        if s.trim_start().starts_with('|') {
            // NAS-Bench-201's architecture string.
            return crate::nb201::Cell::parse(s)
                .map(|c| Genotype::nb201(&c))
                .map_err(|e| GenotypeError(format!("NB201 cell: {e}")));
        }
        Genotype::parse_text(s).map_err(GenotypeError)
    }

    fn parse_text(s: &str) -> Result<Genotype, String> {
        let mut p = Parser {
            s: s.as_bytes(),
            i: 0,
        };
        p.ws();
        p.expect_word("Genotype")?;
        p.expect(b'(')?;
        let (mut normal, mut normal_concat, mut reduce, mut reduce_concat) =
            (None, None, None, None);
        loop {
            p.ws();
            if p.eat(b')') {
                break;
            }
            let key = p.ident()?;
            p.expect(b'=')?;
            match key.as_str() {
                "normal" => normal = Some(p.pairs()?),
                "reduce" => reduce = Some(p.pairs()?),
                "normal_concat" => normal_concat = Some(p.concat()?),
                "reduce_concat" => reduce_concat = Some(p.concat()?),
                other => return Err(format!("unknown field `{other}` at byte {}", p.i)),
            }
            p.ws();
            if !p.eat(b',') {
                p.expect(b')')?;
                break;
            }
        }
        p.ws();
        if p.i != p.s.len() {
            return Err(format!(
                "unexpected text after the closing parenthesis at byte {}",
                p.i
            ));
        }
        Ok(Genotype {
            normal: normal.ok_or("missing `normal`")?,
            normal_concat: normal_concat.ok_or("missing `normal_concat`")?,
            reduce: reduce.ok_or("missing `reduce`")?,
            reduce_concat: reduce_concat.ok_or("missing `reduce_concat`")?,
        })
    }
}

/// `s` as a Python string literal in single quotes: backslashes, quotes and anything but
/// printable ASCII escaped, so that the text a genotype prints is data to the scripts that
/// `eval` it, never code.
pub fn python_str(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            ' '..='~' => out.push(c),
            c if u32::from(c) < 0x100 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('\'');
    out
}

impl fmt::Display for Genotype {
    /// `Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...],
    /// reduce_concat=[2, 3, 4, 5])`, as the DARTS/NASP training scripts accept.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(cell) = self.nb201_cell() {
            return write!(f, "{cell}");
        }
        let pairs = |v: &[(String, usize)]| {
            v.iter()
                .map(|(o, i)| format!("({}, {i})", python_str(o)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ints = |v: &[usize]| {
            v.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "Genotype(normal=[{}], normal_concat=[{}], reduce=[{}], reduce_concat=[{}])",
            pairs(&self.normal),
            ints(&self.normal_concat),
            pairs(&self.reduce),
            ints(&self.reduce_concat)
        )
    }
}

impl Genotype {
    /// Checks that the genotype describes cells that can be built and trained in a space whose
    /// op lists are `lists`: every op is in its cell type's list (and is not `none`), every
    /// node reads a state that exists before it (the two cell inputs, then earlier nodes), and
    /// the concatenated states exist. The error names the cell, the position and the op.
    pub fn check_trainable(&self, lists: &OpLists) -> Result<(), GenotypeError> {
        // The nb201 space is the one whose reduction list is empty.
        let nb201_space = lists.reduce.is_empty();
        match (self.nb201_cell().is_some(), nb201_space) {
            (true, true) => return Ok(()),
            (true, false) => {
                return Err(GenotypeError(
                    "a NAS-Bench-201 cell trains in the nb201 space: set model.space = \"nb201\" (configs/nb201-train.toml)".into(),
                ));
            }
            (false, true) => {
                return Err(GenotypeError(
                    "the nb201 space trains NAS-Bench-201 cells (`|op~0|+|op~0|op~1|+|...|`); this genotype is a DARTS-style cell: choose the space it was searched in (model.space)".into(),
                ));
            }
            (false, false) => {}
        }
        for (cell, ops, concat) in [
            (CellType::Normal, &self.normal, &self.normal_concat),
            (CellType::Reduce, &self.reduce, &self.reduce_concat),
        ] {
            let name = cell.name();
            if ops.is_empty() || ops.len() % 2 != 0 {
                return Err(GenotypeError(format!(
                    "`{name}` has {} ops; a cell needs two per node (an even number, at least 2)",
                    ops.len()
                )));
            }
            let allowed = lists.get(cell);
            for (e, (op, input)) in ops.iter().enumerate() {
                let at = format!("`{name}` position {e} ('{op}', {input})");
                if op == "none" {
                    return Err(GenotypeError(format!(
                        "{at}: `none` (the zero op) cannot be part of a trained cell"
                    )));
                }
                if !allowed.iter().any(|a| a == op) {
                    return Err(GenotypeError(format!(
                        "{at}: op '{op}' is not in this space's {name} ops ({}); check the genotype, or choose the space it was searched in (model.space, model.{name}_ops)",
                        allowed.join(", ")
                    )));
                }
                let node = e / 2;
                if *input >= node + 2 {
                    return Err(GenotypeError(format!(
                        "{at}: node {node} can read states 0..={} (the two cell inputs and the nodes before it); input {input} does not exist",
                        node + 1
                    )));
                }
            }
            let states = ops.len() / 2 + 2;
            if concat.is_empty() {
                return Err(GenotypeError(format!(
                    "`{name}_concat` is empty; it names the states the cell outputs"
                )));
            }
            if let Some(bad) = concat.iter().find(|&&k| k >= states) {
                return Err(GenotypeError(format!(
                    "`{name}_concat` names state {bad}, but the cell has states 0..={}",
                    states - 1
                )));
            }
        }
        Ok(())
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected `{}` at byte {}", c as char, self.i))
        }
    }
    fn ident(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(format!("expected a name at byte {start}"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn expect_word(&mut self, w: &str) -> Result<(), String> {
        let got = self.ident()?;
        if got == w {
            Ok(())
        } else {
            Err(format!("expected `{w}`, found `{got}`"))
        }
    }
    fn int(&mut self) -> Result<usize, String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("expected a number at byte {start}"))
    }
    fn string(&mut self) -> Result<String, String> {
        self.ws();
        let q = *self
            .s
            .get(self.i)
            .ok_or("unexpected end, expected a quoted op name")?;
        if q != b'\'' && q != b'"' {
            return Err(format!("expected a quoted op name at byte {}", self.i));
        }
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != q {
            self.i += 1;
        }
        if self.i >= self.s.len() {
            return Err(format!("unterminated string starting at byte {start}"));
        }
        let out = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(out)
    }
    fn pairs(&mut self) -> Result<Vec<(String, usize)>, String> {
        self.expect(b'[')?;
        let mut out = Vec::new();
        if self.eat(b']') {
            return Ok(out);
        }
        loop {
            self.expect(b'(')?;
            let op = self.string()?;
            self.expect(b',')?;
            let i = self.int()?;
            self.expect(b')')?;
            out.push((op, i));
            if self.eat(b']') {
                return Ok(out);
            }
            self.expect(b',')?;
            if self.eat(b']') {
                return Ok(out);
            }
        }
    }
    fn concat(&mut self) -> Result<Vec<usize>, String> {
        self.ws();
        if self.s[self.i..].starts_with(b"range") {
            self.i += 5;
            self.expect(b'(')?;
            let a = self.int()?;
            self.expect(b',')?;
            let b = self.int()?;
            self.expect(b')')?;
            return Ok((a..b).collect());
        }
        self.expect(b'[')?;
        let mut out = Vec::new();
        if self.eat(b']') {
            return Ok(out);
        }
        loop {
            out.push(self.int()?);
            if self.eat(b']') {
                return Ok(out);
            }
            self.expect(b',')?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_with_range_and_spaces() {
        let text = "Genotype(normal=[('conv_3x1_1x3', 0), ('conv 3x3', 1), ('dil_conv_3x3', 2), ('conv 3x3', 1), ('dil_conv_3x3', 2), ('conv 3x3', 0), ('skip_connect', 0), ('dil_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_5x5', 1), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 0), ('skip_connect', 1)], reduce_concat=range(2, 6))";
        let g = Genotype::parse(text).unwrap();
        assert_eq!(g.normal_concat, vec![2, 3, 4, 5]);
        assert_eq!(g.normal[1], ("conv 3x3".to_string(), 1));
        let again = Genotype::parse(&g.to_string()).unwrap();
        assert_eq!(g, again);
        assert!(g.to_string().contains("normal_concat=[2, 3, 4, 5]"));
        assert_eq!(Genotype::from_json(&g.to_json()).unwrap(), g);
        assert!(Genotype::parse("Genotype(normal=[('a', 0)]").is_err());
        assert!(Genotype::parse("Genotype(normal=[], bogus=1)").is_err());
    }
}
