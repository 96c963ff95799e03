import { useEffect, useRef, useState } from 'react';

type Props = {
  id: string;
  label: string;
  value: string;
  placeholder?: string;
  onSearch: (value: string) => void;
  delayMs?: number;
  /** Label beside the field rather than above it (for card headers). */
  inline?: boolean;
};

/** A labelled search field that reports its value once typing pauses (or on Enter). */
export function SearchBox({ id, label, value, placeholder, onSearch, delayMs = 300, inline = false }: Props) {
  const [text, setText] = useState(value);
  const committed = useRef(value);
  const onSearchRef = useRef(onSearch);
  useEffect(() => {
    onSearchRef.current = onSearch;
  });

  // The value changed from outside (Back button, a link): show it.
  useEffect(() => {
    if (value !== committed.current) {
      committed.current = value;
      setText(value);
    }
  }, [value]);

  useEffect(() => {
    if (text.trim() === committed.current) return;
    const t = setTimeout(() => {
      committed.current = text.trim();
      onSearchRef.current(text.trim());
    }, delayMs);
    return () => clearTimeout(t);
  }, [text, delayMs]);

  return (
    <form role="search" aria-label={label} className={`search${inline ? ' search--inline' : ''}`} onSubmit={(e) => {
      e.preventDefault();
      if (text.trim() !== committed.current) {
        committed.current = text.trim();
        onSearchRef.current(text.trim());
      }
    }}>
      <label htmlFor={id} className="search__label">{label}</label>
      <input id={id} type="search" className="input search__input" value={text} placeholder={placeholder}
        autoComplete="off" spellCheck={false} onChange={(e) => setText(e.target.value)} />
    </form>
  );
}
