//! A writer schema compiled into a decoding plan: what to read, in order, with named
//! references resolved once. Logical types decode as their underlying type.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{InnerDecimalSchema, Name, UuidSchema};

use super::binary::{AvroError, Cursor};

/// Deepest nesting a message may have; bounds recursion on hostile input.
const MAX_DEPTH: usize = 64;

/// How to read one value.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Nothing.
    Null,
    /// One byte.
    Boolean,
    /// A varint `int`.
    Int,
    /// A varint `long`.
    Long,
    /// 4 bytes.
    Float,
    /// 8 bytes.
    Double,
    /// Length-prefixed bytes.
    Bytes,
    /// Length-prefixed UTF-8.
    String,
    /// A fixed number of bytes.
    Fixed(usize),
    /// An enum with this many symbols.
    Enum(usize),
    /// Blocks of items.
    Array(Box<Plan>),
    /// Blocks of string keys and values.
    Map(Box<Plan>),
    /// Fields in order.
    Record(Vec<Plan>),
    /// A branch index, then that branch.
    Union(Vec<Plan>),
    /// A named type (record, enum, fixed), by index into [`CompiledSchema`]'s table; this is
    /// how recursive types are expressed.
    Named(usize),
}

/// A value read for its content, unions resolved. Complex values are skipped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// `null`.
    Null,
    /// `boolean`.
    Boolean(bool),
    /// `int` or `long` (and their logical types).
    Integer(i64),
    /// `float` or `double`.
    Real(f64),
    /// `string`.
    Str(&'a str),
    /// Anything else (read past).
    Other,
}

/// A schema compiled once: the root plan and the table of named types.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledSchema {
    /// The plan of the whole schema.
    pub root: Plan,
    named: Vec<Plan>,
}

struct Compiler<'s> {
    names: &'s HashMap<Name, &'s Schema>,
    index: HashMap<Name, usize>,
    named: Vec<Plan>,
}

impl Compiler<'_> {
    /// A named type's slot, compiling its body on first sight (the slot exists before the
    /// body is compiled, so a type may refer to itself).
    fn named(&mut self, name: &Name, body: &Schema) -> Result<Plan, String> {
        if let Some(&i) = self.index.get(name) {
            return Ok(Plan::Named(i));
        }
        let i = self.named.len();
        self.named.push(Plan::Null);
        self.index.insert(name.clone(), i);
        self.named[i] = match body {
            Schema::Record(r) => Plan::Record(
                r.fields
                    .iter()
                    .map(|f| self.plan(&f.schema))
                    .collect::<Result<_, _>>()?,
            ),
            Schema::Enum(e) => Plan::Enum(e.symbols.len()),
            Schema::Fixed(f) => Plan::Fixed(f.size),
            other => self.plan(other)?,
        };
        Ok(Plan::Named(i))
    }

    fn plan(&mut self, schema: &Schema) -> Result<Plan, String> {
        Ok(match schema {
            Schema::Null => Plan::Null,
            Schema::Boolean => Plan::Boolean,
            Schema::Int | Schema::Date | Schema::TimeMillis => Plan::Int,
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => Plan::Long,
            Schema::Float => Plan::Float,
            Schema::Double => Plan::Double,
            Schema::Bytes | Schema::BigDecimal => Plan::Bytes,
            Schema::String => Plan::String,
            Schema::Uuid(UuidSchema::String) => Plan::String,
            Schema::Uuid(UuidSchema::Bytes) => Plan::Bytes,
            Schema::Uuid(UuidSchema::Fixed(f)) => Plan::Fixed(f.size),
            Schema::Duration(f) => Plan::Fixed(f.size),
            Schema::Decimal(d) => match &d.inner {
                InnerDecimalSchema::Bytes => Plan::Bytes,
                InnerDecimalSchema::Fixed(f) => Plan::Fixed(f.size),
            },
            Schema::Record(r) => self.named(&r.name, schema)?,
            Schema::Enum(e) => self.named(&e.name, schema)?,
            Schema::Fixed(f) => self.named(&f.name, schema)?,
            Schema::Array(a) => Plan::Array(Box::new(self.plan(&a.items)?)),
            Schema::Map(m) => Plan::Map(Box::new(self.plan(&m.types)?)),
            Schema::Union(u) => Plan::Union(
                u.variants()
                    .iter()
                    .map(|v| self.plan(v))
                    .collect::<Result<_, _>>()?,
            ),
            Schema::Ref { name } => {
                let names = self.names;
                let target = names
                    .get(name)
                    .ok_or_else(|| format!("unknown type {}", name.fullname(None)))?;
                self.named(name, target)?
            }
        })
    }
}

impl CompiledSchema {
    /// Compiles `schema`, resolving named references against the schema itself.
    pub fn compile(schema: &Schema) -> Result<Self, String> {
        let resolved =
            apache_avro::schema::ResolvedSchema::try_from(schema).map_err(|e| e.to_string())?;
        let mut compiler = Compiler {
            names: resolved.get_names(),
            index: HashMap::new(),
            named: Vec::new(),
        };
        let root = compiler.plan(schema)?;
        Ok(CompiledSchema {
            root,
            named: compiler.named,
        })
    }

    /// The plan behind `plan`: a named type's body, or `plan` itself.
    pub fn resolve<'p>(&'p self, plan: &'p Plan) -> &'p Plan {
        match plan {
            Plan::Named(i) => &self.named[*i],
            other => other,
        }
    }

    /// Reads past one value.
    pub fn skip(&self, plan: &Plan, c: &mut Cursor<'_>) -> Result<(), AvroError> {
        self.skip_at(plan, c, 0)
    }

    fn skip_at(&self, plan: &Plan, c: &mut Cursor<'_>, depth: usize) -> Result<(), AvroError> {
        if depth > MAX_DEPTH {
            return Err(AvroError::TooDeep);
        }
        let deeper = depth + 1;
        match plan {
            Plan::Null => {}
            Plan::Boolean => {
                c.boolean()?;
            }
            Plan::Int | Plan::Long => {
                c.long()?;
            }
            Plan::Float => {
                c.take(4)?;
            }
            Plan::Double => {
                c.take(8)?;
            }
            Plan::Bytes | Plan::String => {
                c.bytes()?;
            }
            Plan::Fixed(n) => {
                c.take(*n)?;
            }
            Plan::Enum(n) => {
                let i = c.long()?;
                if !(0..*n as i64).contains(&i) {
                    return Err(AvroError::BadEnumIndex(i));
                }
            }
            Plan::Array(items) => {
                let zero_size = self.is_zero_size(items, deeper);
                skip_blocks(c, zero_size, |c| self.skip_at(items, c, deeper))?
            }
            Plan::Map(values) => skip_blocks(c, false, |c| {
                c.bytes()?;
                self.skip_at(values, c, deeper)
            })?,
            Plan::Record(fields) => {
                for f in fields {
                    self.skip_at(f, c, deeper)?;
                }
            }
            Plan::Union(branches) => self.skip_at(branch(branches, c)?, c, deeper)?,
            Plan::Named(i) => self.skip_at(&self.named[*i], c, deeper)?,
        }
        Ok(())
    }

    /// Whether every value of `plan` is encoded in zero bytes (null, an empty fixed, a record
    /// of such): an array of them may declare any count without any bytes to back it.
    fn is_zero_size(&self, plan: &Plan, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match plan {
            Plan::Null | Plan::Fixed(0) => true,
            Plan::Record(fields) => fields.iter().all(|f| self.is_zero_size(f, depth + 1)),
            Plan::Named(i) => self.is_zero_size(&self.named[*i], depth + 1),
            _ => false,
        }
    }

    /// Reads one value for its content.
    #[inline]
    pub fn scalar<'a>(&self, plan: &Plan, c: &mut Cursor<'a>) -> Result<Scalar<'a>, AvroError> {
        Ok(match plan {
            Plan::Null => Scalar::Null,
            Plan::Boolean => Scalar::Boolean(c.boolean()?),
            Plan::Int | Plan::Long => Scalar::Integer(c.long()?),
            Plan::Float => Scalar::Real(f64::from(c.float()?)),
            Plan::Double => Scalar::Real(c.double()?),
            Plan::String => Scalar::Str(c.string()?),
            Plan::Union(branches) => return self.scalar(branch(branches, c)?, c),
            other => {
                self.skip(other, c)?;
                Scalar::Other
            }
        })
    }
}

fn branch<'p>(branches: &'p [Plan], c: &mut Cursor<'_>) -> Result<&'p Plan, AvroError> {
    let i = c.long()?;
    usize::try_from(i)
        .ok()
        .and_then(|i| branches.get(i))
        .ok_or(AvroError::BadUnionIndex(i))
}

/// Array and map blocks: a count (negative: followed by the block's byte size), items, and a
/// zero count at the end. The work is bounded by the bytes, whatever the counts say: items of
/// zero size are not visited at all, and any other item takes at least one byte, so a count
/// beyond the bytes left is refused before the loop.
fn skip_blocks(
    c: &mut Cursor<'_>,
    zero_size: bool,
    mut item: impl FnMut(&mut Cursor<'_>) -> Result<(), AvroError>,
) -> Result<(), AvroError> {
    loop {
        let count = c.long()?;
        if count == 0 {
            return Ok(());
        }
        if count < 0 {
            let size = c.length()?;
            c.take(size)?;
            continue;
        }
        if zero_size {
            continue;
        }
        if count as u64 > c.remaining() as u64 {
            return Err(AvroError::BadLength(count));
        }
        for _ in 0..count {
            item(c)?;
        }
    }
}
