//! Corpora read from text files as training goes, so that memory does not grow with the
//! corpus: one pass counts the words (the vocabulary), then every epoch reads the files again,
//! a buffer at a time, and hands the trainer one encoded sentence at a time.
//!
//! The text is read as `rustnce.word2vec.read_sentences` reads it: UTF-8, one sentence per line
//! (`\n`, `\r\n` or `\r` ends a line; blank lines are skipped), words separated by Unicode
//! whitespace (Python's `str.split()`). Files compressed with gzip or bzip2 are recognised by
//! their first bytes, whatever their names; a directory stands for the files under it, in
//! order of their paths (hidden ones skipped). A line longer than [`LONG_LINE`] bytes is cut at
//! its last whitespace before that length into several sentences (gensim also cuts long
//! sentences), so that a file without line ends cannot fill the memory.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::SystemTime;

/// Word tables: foldhash, randomly seeded per process (SipHash was a third of the reading).
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use super::corpus::Sentences;
use crate::error::{NceError, Result};

/// Lines longer than this many bytes are cut into several sentences.
pub const LONG_LINE: usize = 1 << 22;

/// A single word longer than this many bytes is refused.
pub const LONGEST_WORD: usize = 1 << 24;

const READ_BUFFER: usize = 1 << 18;

/// How a file is stored, found from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Plain,
    Gzip,
    Bzip2,
}

impl Compression {
    fn name(self) -> &'static str {
        match self {
            Compression::Plain => "text",
            Compression::Gzip => "gzip",
            Compression::Bzip2 => "bzip2",
        }
    }
}

/// One file of a corpus, as the counting pass found it.
#[derive(Clone, Debug)]
pub struct CorpusFile {
    pub path: PathBuf,
    pub compression: Compression,
    /// Whitespace-separated words in the file.
    pub words: u64,
    /// Size and modification time when counted: a file that changes afterwards is refused.
    size: u64,
    modified: Option<SystemTime>,
}

fn shown(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

fn io_error(path: &Path, message: impl Into<String>, kind: io::ErrorKind) -> NceError {
    NceError::Io {
        path: format!("corpus {}", shown(path)),
        message: message.into(),
        kind,
    }
}

fn read_error(path: &Path, compression: Compression, error: &io::Error) -> NceError {
    let message = match compression {
        Compression::Plain => format!("cannot be read: {error}"),
        other => format!("is not valid {} data: {error}", other.name()),
    };
    io_error(path, message, error.kind())
}

/// The files `paths` name: files as given, directories replaced by the regular files under
/// them (recursively, by path, names starting with `.` skipped).
pub fn list_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if paths.is_empty() {
        return Err(NceError::invalid("paths", "name at least one corpus file"));
    }
    let mut files = Vec::new();
    for path in paths {
        let metadata = fs::metadata(path).map_err(|error| match error.kind() {
            io::ErrorKind::NotFound => io_error(path, "does not exist", error.kind()),
            kind => io_error(path, format!("cannot be read: {error}"), kind),
        })?;
        if metadata.is_dir() {
            let before = files.len();
            walk(path, &mut files)?;
            if files.len() == before {
                return Err(io_error(
                    path,
                    "is a directory without files",
                    io::ErrorKind::NotFound,
                ));
            }
        } else if metadata.is_file() {
            files.push(path.clone());
        } else {
            return Err(io_error(
                path,
                "is a device or pipe, not a text file",
                io::ErrorKind::InvalidInput,
            ));
        }
    }
    Ok(files)
}

fn walk(directory: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let unreadable = |error: io::Error| {
        io_error(
            directory,
            format!("cannot be listed: {error}"),
            error.kind(),
        )
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(directory).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    for path in entries {
        // Follows links, as opening the file would.
        match fs::metadata(&path) {
            Ok(metadata) if metadata.is_dir() => walk(&path, files)?,
            Ok(metadata) if metadata.is_file() => files.push(path),
            _ => {} // devices, pipes, sockets and dangling links are not corpus files
        }
    }
    Ok(())
}

/// The file's decompressed bytes.
fn open(path: &Path) -> Result<(Box<dyn BufRead + Send>, Compression, fs::Metadata)> {
    let file = File::open(path).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => io_error(path, "does not exist", error.kind()),
        kind => io_error(path, format!("cannot be opened: {error}"), kind),
    })?;
    let metadata = file
        .metadata()
        .map_err(|error| read_error(path, Compression::Plain, &error))?;
    if !metadata.is_file() {
        return Err(io_error(
            path,
            "is not a regular file",
            io::ErrorKind::InvalidInput,
        ));
    }
    let mut reader = BufReader::with_capacity(READ_BUFFER, file);
    let start = reader
        .fill_buf()
        .map_err(|error| read_error(path, Compression::Plain, &error))?;
    let compression = if start.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if start.starts_with(b"BZh") {
        Compression::Bzip2
    } else {
        Compression::Plain
    };
    let reader: Box<dyn BufRead + Send> = match compression {
        Compression::Plain => Box::new(reader),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            READ_BUFFER,
            flate2::bufread::MultiGzDecoder::new(reader),
        )),
        Compression::Bzip2 => Box::new(BufReader::with_capacity(
            READ_BUFFER,
            bzip2::bufread::MultiBzDecoder::new(reader),
        )),
    };
    Ok((reader, compression, metadata))
}

/// Python's `str.split()` separators: Unicode whitespace and the four ASCII separators.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn is_separator_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0b | 0x0c | 0x1c..=0x1f)
}

/// The sentences of one file, each a line (or a piece of a very long line).
struct LineReader {
    reader: Box<dyn BufRead + Send>,
    path: PathBuf,
    compression: Compression,
    /// Bytes read and not yet handed out; the next sentence starts at `cursor`.
    buffer: Vec<u8>,
    cursor: usize,
    /// The buffer holds the end of the file.
    at_end: bool,
    line: u64,
}

impl LineReader {
    fn new(reader: Box<dyn BufRead + Send>, path: &Path, compression: Compression) -> Self {
        LineReader {
            reader,
            path: path.to_path_buf(),
            compression,
            buffer: Vec::new(),
            cursor: 0,
            at_end: false,
            line: 1,
        }
    }

    /// The next sentence's text (possibly blank), or `None` at the end of the file.
    fn next_line(&mut self) -> Result<Option<&str>> {
        loop {
            let rest = &self.buffer[self.cursor..];
            let end = rest.iter().position(|&b| b == b'\n' || b == b'\r');
            let (length, skip) = match end {
                Some(at) => (at, 1),
                None if self.at_end && rest.is_empty() => return Ok(None),
                None if self.at_end => (rest.len(), 0),
                None if rest.len() >= LONG_LINE => {
                    // Cut at the last separator byte; multi-byte separators are not cut at.
                    match rest.iter().rposition(|&b| is_separator_byte(b)) {
                        Some(at) => (at, 1),
                        None if rest.len() >= LONGEST_WORD => {
                            return Err(io_error(
                                &self.path,
                                format!(
                                    "line {} holds a word longer than {LONGEST_WORD} bytes",
                                    self.line
                                ),
                                io::ErrorKind::InvalidData,
                            ))
                        }
                        None => {
                            self.read_more()?;
                            continue;
                        }
                    }
                }
                None => {
                    self.read_more()?;
                    continue;
                }
            };
            let start = self.cursor;
            let number = self.line;
            self.cursor += length + skip;
            if skip == 1 && self.buffer[start + length] == b'\n' {
                self.line += 1;
            }
            let bytes = &self.buffer[start..start + length];
            return match std::str::from_utf8(bytes) {
                Ok(text) => Ok(Some(text)),
                Err(_) => Err(io_error(
                    &self.path,
                    format!("is not UTF-8 text (line {number})"),
                    io::ErrorKind::InvalidData,
                )),
            };
        }
    }

    /// Appends the next buffer of the file, dropping what was handed out.
    fn read_more(&mut self) -> Result<()> {
        self.buffer.drain(..self.cursor);
        self.cursor = 0;
        let before = self.buffer.len();
        let mut limited = (&mut self.reader).take(READ_BUFFER as u64);
        let read = limited
            .read_to_end(&mut self.buffer)
            .map_err(|error| read_error(&self.path, self.compression, &error))?;
        debug_assert_eq!(self.buffer.len(), before + read);
        if read == 0 {
            self.at_end = true;
        }
        Ok(())
    }
}

fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split(is_separator).filter(|word| !word.is_empty())
}

/// The words kept for training, most frequent first, and their lookup.
#[derive(Debug, Default)]
pub struct Vocabulary {
    pub words: Vec<Box<str>>,
    pub counts: Vec<i64>,
    index: HashMap<Box<str>, u32>,
}

impl Vocabulary {
    /// `words` with their `counts` (ids are positions); refuses repeated words.
    pub fn new(words: Vec<Box<str>>, counts: Vec<i64>) -> Result<Self> {
        if words.len() != counts.len() {
            return Err(NceError::invalid(
                "counts",
                format!(
                    "must have one entry per word ({}), got {}",
                    words.len(),
                    counts.len()
                ),
            ));
        }
        if words.len() > u32::MAX as usize {
            return Err(NceError::invalid("words", "more than 2**32 - 1 words"));
        }
        let mut index = HashMap::with_capacity_and_hasher(words.len(), Default::default());
        for (id, word) in words.iter().enumerate() {
            if index.insert(word.clone(), id as u32).is_some() {
                return Err(NceError::invalid(
                    "words",
                    format!("{word:?} appears twice"),
                ));
            }
        }
        Ok(Vocabulary {
            words,
            counts,
            index,
        })
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }
}

/// A corpus in text files, counted: its vocabulary and how much text each file holds.
#[derive(Debug)]
pub struct TextCorpus {
    pub files: Vec<CorpusFile>,
    pub vocabulary: Vocabulary,
    /// Words of the vocabulary in the corpus: the tokens of one epoch.
    pub tokens: u64,
    /// All words of the corpus, rare ones included.
    pub raw_words: u64,
    /// The most often a word below `min_count` occurs (0 if none was dropped).
    pub most_frequent_dropped: u64,
}

/// What the counting pass saw of one word: its count and the order of its first appearance.
struct Seen {
    count: u64,
    first: u64,
}

impl TextCorpus {
    /// Counts the words of the files `paths` name and keeps those seen at least `min_count`
    /// times, most frequent first (ties in order of first appearance, as word2vec sorts).
    /// `interrupted` is asked now and then whether to give up.
    pub fn count(
        paths: &[PathBuf],
        min_count: u64,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Self> {
        let mut seen: HashMap<Box<str>, Seen> = HashMap::default();
        let mut distinct = 0u64;
        let files = Self::read_all(paths, interrupted, |sentence| {
            for word in words(sentence) {
                match seen.get_mut(word) {
                    Some(entry) => entry.count += 1,
                    None => {
                        seen.insert(
                            word.into(),
                            Seen {
                                count: 1,
                                first: distinct,
                            },
                        );
                        distinct += 1;
                    }
                }
            }
        })?;
        let mut most_dropped = 0;
        let mut kept = Vec::new();
        for (word, entry) in seen {
            if entry.count >= min_count.max(1) {
                kept.push((word, entry));
            } else {
                most_dropped = most_dropped.max(entry.count);
            }
        }
        kept.sort_unstable_by_key(|(_, entry)| (std::cmp::Reverse(entry.count), entry.first));
        let counts = kept.iter().map(|(_, entry)| entry.count as i64).collect();
        let words = kept.into_iter().map(|(word, _)| word).collect();
        let vocabulary = Vocabulary::new(words, counts)?;
        let tokens = vocabulary.counts.iter().map(|&count| count as u64).sum();
        Ok(Self::finish(files, vocabulary, tokens, most_dropped))
    }

    /// The corpus of `paths` with a vocabulary given (a saved model's): only counts tokens.
    pub fn with_vocabulary(
        paths: &[PathBuf],
        vocabulary: Vocabulary,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<Self> {
        let mut tokens = 0u64;
        let files = Self::read_all(paths, interrupted, |sentence| {
            tokens += words(sentence)
                .filter(|word| vocabulary.id(word).is_some())
                .count() as u64;
        })?;
        Ok(Self::finish(files, vocabulary, tokens, 0))
    }

    /// Reads every file once, handing each line to `each_line`.
    fn read_all(
        paths: &[PathBuf],
        interrupted: &mut dyn FnMut() -> bool,
        mut each_line: impl FnMut(&str),
    ) -> Result<Vec<CorpusFile>> {
        let mut files = Vec::new();
        for path in list_files(paths)? {
            let (reader, compression, metadata) = open(&path)?;
            let mut lines = LineReader::new(reader, &path, compression);
            let mut count = 0u64;
            let mut since_check = 0usize;
            while let Some(line) = lines.next_line()? {
                count += words(line).count() as u64;
                each_line(line);
                since_check += line.len() + 1;
                if since_check >= 1 << 24 {
                    since_check = 0;
                    if interrupted() {
                        return Err(NceError::invalid("corpus", "interrupted"));
                    }
                }
            }
            files.push(CorpusFile {
                path,
                compression,
                words: count,
                size: metadata.len(),
                modified: metadata.modified().ok(),
            });
        }
        Ok(files)
    }

    fn finish(
        files: Vec<CorpusFile>,
        vocabulary: Vocabulary,
        tokens: u64,
        most_frequent_dropped: u64,
    ) -> TextCorpus {
        TextCorpus {
            raw_words: files.iter().map(|file| file.words).sum(),
            files,
            vocabulary,
            tokens,
            most_frequent_dropped,
        }
    }
}

/// Whether some sentence of `corpus` holds two vocabulary words (a training pair): reads
/// until the first such sentence, so only a corpus without pairs is read whole.
pub fn has_pairs(corpus: &Arc<TextCorpus>) -> Result<bool> {
    let mut reader = SentenceReader::new(Arc::clone(corpus));
    while let Some(sentence) = reader.next_sentence()? {
        if sentence.len() >= 2 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Reads a [`TextCorpus`] sentence by sentence, encoded with its vocabulary (other words
/// dropped), checking that every file still holds what was counted.
struct SentenceReader {
    corpus: Arc<TextCorpus>,
    /// The file being read (an index into `corpus.files`).
    file: usize,
    lines: Option<LineReader>,
    /// Words read from the current file so far.
    words: u64,
    sentence: Vec<u32>,
}

impl SentenceReader {
    fn new(corpus: Arc<TextCorpus>) -> Self {
        SentenceReader {
            corpus,
            file: 0,
            lines: None,
            words: 0,
            sentence: Vec::new(),
        }
    }

    fn changed(&self, how: String) -> NceError {
        let file = &self.corpus.files[self.file];
        io_error(
            &file.path,
            format!("changed after it was counted ({how}); train on files that stay as they are"),
            io::ErrorKind::InvalidData,
        )
    }

    fn open_current(&mut self) -> Result<()> {
        let file = &self.corpus.files[self.file];
        let (reader, compression, metadata) = open(&file.path)?;
        if metadata.len() != file.size || metadata.modified().ok() != file.modified {
            let how = format!("{} bytes when counted, {} now", file.size, metadata.len());
            return Err(self.changed(how));
        }
        self.lines = Some(LineReader::new(reader, &file.path, compression));
        self.words = 0;
        Ok(())
    }
}

impl SentenceReader {
    fn next_sentence(&mut self) -> Result<Option<&[u32]>> {
        loop {
            if self.file >= self.corpus.files.len() {
                return Ok(None);
            }
            if self.lines.is_none() {
                self.open_current()?;
            }
            let lines = self.lines.as_mut().expect("opened above");
            let Some(line) = lines.next_line()? else {
                let counted = self.corpus.files[self.file].words;
                if self.words != counted {
                    let how = format!("{counted} words when counted, {} now", self.words);
                    return Err(self.changed(how));
                }
                self.lines = None;
                self.file += 1;
                continue;
            };
            self.sentence.clear();
            let vocabulary = &self.corpus.vocabulary;
            for word in words(line) {
                self.words += 1;
                if let Some(id) = vocabulary.id(word) {
                    self.sentence.push(id);
                }
            }
            if self.words > self.corpus.files[self.file].words {
                let counted = self.corpus.files[self.file].words;
                let how = format!("{counted} words when counted, more now");
                return Err(self.changed(how));
            }
            if !self.sentence.is_empty() {
                return Ok(Some(&self.sentence));
            }
        }
    }
}

/// Sentences per message from the reading thread: about this many tokens.
const CHUNK_TOKENS: usize = 1 << 16;

/// Chunks the reading thread may be ahead of training.
const CHUNKS_AHEAD: usize = 4;

/// Encoded sentences, back to back.
#[derive(Default)]
struct Chunk {
    ids: Vec<u32>,
    /// Exclusive end of each sentence in `ids`.
    ends: Vec<usize>,
}

enum Message {
    Sentences(Chunk),
    Failed(NceError),
    Done,
}

/// A [`TextCorpus`] as the trainer reads it: a thread reads and encodes the files a few chunks
/// of sentences ahead (one pass per epoch), so that decompressing, splitting and looking up
/// words overlap training.
pub struct TextStream {
    corpus: Arc<TextCorpus>,
    reading: Option<(Receiver<Message>, JoinHandle<()>)>,
    /// The process that started the reading thread: a child forked since has no such thread.
    reader_process: u32,
    chunk: Chunk,
    /// The next sentence of `chunk`.
    next: usize,
    /// The epoch's reading is over (done or failed).
    over: bool,
}

impl TextStream {
    pub fn new(corpus: Arc<TextCorpus>) -> Self {
        TextStream {
            corpus,
            reading: None,
            reader_process: std::process::id(),
            chunk: Chunk::default(),
            next: 0,
            over: false,
        }
    }

    fn start(&mut self) -> Result<()> {
        let (sender, receiver) = sync_channel(CHUNKS_AHEAD);
        let corpus = Arc::clone(&self.corpus);
        let worker = std::thread::Builder::new()
            .name("rustnce-corpus".into())
            .spawn(move || read_ahead(corpus, sender))
            .map_err(|error| {
                NceError::invalid(
                    "corpus",
                    format!("cannot start its reading thread: {error}"),
                )
            })?;
        self.reading = Some((receiver, worker));
        self.reader_process = std::process::id();
        Ok(())
    }

    /// Whether this process is a child forked while the reading thread ran (it has no such
    /// thread: waiting for it would never end).
    fn forked(&self) -> bool {
        self.reading.is_some() && self.reader_process != std::process::id()
    }

    fn stop(&mut self) {
        if self.forked() {
            // The thread and its channel's other end live in the parent only.
            std::mem::forget(self.reading.take());
        }
        if let Some((receiver, worker)) = self.reading.take() {
            drop(receiver); // a reader blocked on a full channel wakes up and returns
            let _ = worker.join();
        }
        self.chunk = Chunk::default();
        self.next = 0;
        self.over = false;
    }
}

/// The reading thread: the epoch's sentences in chunks, then `Done` (or `Failed`); returns
/// early when the stream stops listening.
fn read_ahead(corpus: Arc<TextCorpus>, sender: SyncSender<Message>) {
    let mut reader = SentenceReader::new(corpus);
    let mut chunk = Chunk::default();
    loop {
        match reader.next_sentence() {
            Ok(Some(sentence)) => {
                chunk.ids.extend_from_slice(sentence);
                chunk.ends.push(chunk.ids.len());
                if chunk.ids.len() >= CHUNK_TOKENS {
                    let full = std::mem::take(&mut chunk);
                    if sender.send(Message::Sentences(full)).is_err() {
                        return;
                    }
                }
            }
            Ok(None) => {
                if !chunk.ends.is_empty() && sender.send(Message::Sentences(chunk)).is_err() {
                    return;
                }
                let _ = sender.send(Message::Done);
                return;
            }
            Err(error) => {
                // Sentences read before the failure are delivered first.
                if chunk.ends.is_empty() || sender.send(Message::Sentences(chunk)).is_ok() {
                    let _ = sender.send(Message::Failed(error));
                }
                return;
            }
        }
    }
}

impl Drop for TextStream {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Sentences for TextStream {
    fn tokens(&self) -> u64 {
        self.corpus.tokens
    }

    fn rewind(&mut self) -> Result<()> {
        self.stop();
        Ok(())
    }

    fn next_sentence(&mut self) -> Result<Option<&[u32]>> {
        while self.next >= self.chunk.ends.len() {
            if self.over {
                return Ok(None);
            }
            if self.forked() {
                return Err(NceError::invalid(
                    "corpus",
                    "this trainer was reading its corpus in the parent process when it forked; \
                     create a new trainer in the child",
                ));
            }
            if self.reading.is_none() {
                self.start()?;
            }
            let (receiver, _) = self.reading.as_ref().expect("started above");
            match receiver.recv() {
                Ok(Message::Sentences(chunk)) => {
                    self.chunk = chunk;
                    self.next = 0;
                }
                Ok(Message::Done) => self.over = true,
                Ok(Message::Failed(error)) => {
                    self.over = true;
                    return Err(error);
                }
                Err(_) => {
                    self.over = true;
                    return Err(NceError::invalid(
                        "corpus",
                        "its reading thread stopped unexpectedly",
                    ));
                }
            }
        }
        let start = match self.next {
            0 => 0,
            k => self.chunk.ends[k - 1],
        };
        let end = self.chunk.ends[self.next];
        self.next += 1;
        Ok(Some(&self.chunk.ids[start..end]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn never() -> impl FnMut() -> bool {
        || false
    }

    fn scratch(name: &str) -> PathBuf {
        let directory =
            std::env::temp_dir().join(format!("rustnce-text-corpus-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&directory);
        fs::create_dir_all(&directory).unwrap();
        directory
    }

    fn sentences_of(corpus: TextCorpus) -> Vec<Vec<&'static str>> {
        let corpus = Arc::new(corpus);
        let mut stream = TextStream::new(Arc::clone(&corpus));
        let mut all = Vec::new();
        while let Some(sentence) = stream.next_sentence().unwrap() {
            let words: Vec<&'static str> = sentence
                .iter()
                .map(|&id| {
                    let word: &str = &corpus.vocabulary.words[id as usize];
                    &*Box::leak(word.to_owned().into_boxed_str())
                })
                .collect();
            all.push(words);
        }
        all
    }

    #[test]
    fn lines_words_and_counts_follow_pythons_split() {
        let directory = scratch("split");
        let path = directory.join("a.txt");
        // \r and \r\n end lines; \x1c and a no-break space separate words; blank lines vanish.
        fs::write(&path, "b a\x1cc a\r\rc\u{a0}d a\r\n\n  \nrare b\n").unwrap();
        let corpus = TextCorpus::count(&[path], 2, &mut never()).unwrap();
        let words: Vec<&str> = corpus.vocabulary.words.iter().map(|w| &**w).collect();
        assert_eq!(words, ["a", "b", "c"]);
        assert_eq!(corpus.vocabulary.counts, [3, 2, 2]);
        assert_eq!((corpus.raw_words, corpus.tokens), (9, 7));
        assert_eq!(corpus.most_frequent_dropped, 1);
        let corpus = Arc::new(corpus);
        assert!(has_pairs(&corpus).unwrap());
        let corpus = Arc::try_unwrap(corpus).unwrap();
        assert_eq!(
            sentences_of(corpus),
            vec![vec!["b", "a", "c", "a"], vec!["c", "a"], vec!["b"]]
        );
    }

    #[test]
    fn gzip_bzip2_and_directories_read_as_the_plain_file() {
        let directory = scratch("compressed");
        let text: String = (0..3000)
            .map(|k| format!("w{} w{} w{}\n", k % 7, k % 11, k % 13))
            .collect();
        let plain = directory.join("plain.txt");
        fs::write(&plain, &text).unwrap();
        let gz = directory.join("sub").join("b.gz");
        fs::create_dir_all(gz.parent().unwrap()).unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        fs::write(&gz, encoder.finish().unwrap()).unwrap();
        let bz = directory.join("c.data");
        let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        fs::write(&bz, encoder.finish().unwrap()).unwrap();
        let single = TextCorpus::count(std::slice::from_ref(&plain), 1, &mut never()).unwrap();
        let doubled: Vec<i64> = single.vocabulary.counts.iter().map(|c| 2 * c).collect();
        let expected = sentences_of(single);
        for path in [&gz, &bz] {
            let corpus = TextCorpus::count(std::slice::from_ref(path), 1, &mut never()).unwrap();
            assert_ne!(corpus.files[0].compression, Compression::Plain);
            assert_eq!(sentences_of(corpus), expected);
        }
        let both = TextCorpus::count(&[directory.join("sub"), plain], 1, &mut never()).unwrap();
        assert_eq!(both.files.len(), 2);
        assert_eq!(both.vocabulary.counts, doubled);
    }

    #[test]
    fn broken_and_changed_files_are_named_in_the_error() {
        let directory = scratch("broken");
        let path = directory.join("broken.gz");
        fs::write(&path, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3]).unwrap();
        let error = TextCorpus::count(&[path], 1, &mut never()).unwrap_err();
        assert!(error.to_string().contains("broken.gz"), "{error}");
        assert!(error.to_string().contains("gzip"), "{error}");

        let path = directory.join("grows.txt");
        fs::write(&path, "a b a b\n").unwrap();
        let corpus =
            Arc::new(TextCorpus::count(std::slice::from_ref(&path), 1, &mut never()).unwrap());
        fs::write(&path, "a b a b\na b\n").unwrap();
        let error = TextStream::new(corpus).next_sentence().unwrap_err();
        assert!(error.to_string().contains("changed"), "{error}");

        let latin1 = directory.join("latin1.txt");
        fs::write(&latin1, b"ok\ncaf\xe9\n").unwrap();
        let error = TextCorpus::count(&[latin1], 1, &mut never()).unwrap_err();
        assert!(error.to_string().contains("UTF-8 text (line 2)"), "{error}");

        let single = directory.join("single.txt");
        fs::write(&single, "a\nb\na\nb x\n").unwrap();
        let corpus = TextCorpus::count(&[single], 2, &mut never()).unwrap();
        assert!(!has_pairs(&Arc::new(corpus)).unwrap());

        let empty = scratch("empty-directory");
        let error = TextCorpus::count(&[empty], 1, &mut never()).unwrap_err();
        assert!(error.to_string().contains("without files"), "{error}");
    }

    #[test]
    fn a_line_without_end_is_cut_into_sentences() {
        let directory = scratch("long");
        let path = directory.join("long.txt");
        // 2.5 bytes a word: the line is 1.25 LONG_LINE long.
        let words = LONG_LINE / 2;
        let line: String = (0..words).map(|k| ["ab ", "c "][k % 2]).collect();
        fs::write(&path, &line).unwrap();
        let corpus = TextCorpus::count(&[path], 1, &mut never()).unwrap();
        assert_eq!(corpus.raw_words as usize, words);
        let mut stream = TextStream::new(Arc::new(corpus));
        let mut lengths = Vec::new();
        while let Some(sentence) = stream.next_sentence().unwrap() {
            lengths.push(sentence.len());
        }
        assert_eq!(lengths.len(), 2);
        assert_eq!(lengths.iter().sum::<usize>(), words);
    }
}
