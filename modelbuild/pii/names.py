"""Hand-written name and filler lists for the synthetic PII data (no real people intended).

Faker covers European locales; these add romanised names of other origins and the
capitalised non-names (products, places, companies, weekdays...) used as negatives.
The first 70% of each name list feeds training, the rest the held-out test set.
"""

from __future__ import annotations

FIRST_NAMES_WORLD: tuple[str, ...] = (
    "Wei", "Li", "Jing", "Xiaoming", "Mei", "Hao", "Yan", "Jun", "Ling", "Zhiwei",
    "Haruto", "Yuki", "Sakura", "Hiroshi", "Kenji", "Aiko", "Takumi", "Emi", "Ren", "Naoko",
    "Min-jun", "Ji-woo", "Seo-yeon", "Hyun", "Soo-ah", "Jae", "Eun-ji", "Dong-hyun",
    "Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Deepika", "Arjun", "Kavya", "Sanjay", "Lakshmi",
    "Mohammed", "Fatima", "Omar", "Aisha", "Yusuf", "Layla", "Hassan", "Zainab", "Karim", "Noor",
    "Chinedu", "Ngozi", "Oluwaseun", "Adaeze", "Tunde", "Folake", "Emeka", "Chiamaka", "Kwame",
    "Ama", "Kofi", "Abena", "Wanjiru", "Otieno", "Amani", "Baraka", "Thandiwe", "Sipho",
    "Nguyen", "Linh", "Minh", "Thao", "Duc", "Huong", "Tuan", "Mai",
    "Dmitri", "Olga", "Sergei", "Natasha", "Igor", "Svetlana", "Alexei", "Irina",
    "Mehmet", "Ayse", "Emre", "Zeynep", "Burak", "Elif",
    "Joao", "Ana", "Thiago", "Beatriz", "Rafael", "Camila", "Santiago", "Valentina",
    "Siobhan", "Declan", "Aoife", "Cormac", "Niamh", "Eoin",
    "Kai", "Leilani", "Keanu", "Malia", "Tane", "Aroha",
    "Bjorn", "Astrid", "Lars", "Ingrid", "Sven", "Freya",
)

LAST_NAMES_WORLD: tuple[str, ...] = (
    "Zhang", "Wang", "Chen", "Liu", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun",
    "Tanaka", "Suzuki", "Takahashi", "Watanabe", "Yamamoto", "Nakamura", "Kobayashi", "Sato",
    "Kim", "Park", "Choi", "Jung", "Kang", "Yoon", "Lim", "Han",
    "Patel", "Sharma", "Singh", "Gupta", "Reddy", "Iyer", "Nair", "Chatterjee", "Mehta", "Rao",
    "Al-Sayed", "Haddad", "Khalil", "Rahman", "Hussein", "Farouk", "Nasser", "Aziz", "Mansour",
    "Okafor", "Adeyemi", "Okonkwo", "Balogun", "Eze", "Mensah", "Boateng", "Asante", "Kamau",
    "Mwangi", "Odhiambo", "Ndlovu", "Dlamini", "Nkosi",
    "Tran", "Le", "Pham", "Hoang", "Vu", "Dang",
    "Ivanov", "Petrova", "Smirnov", "Volkova", "Kuznetsov", "Popov",
    "Yilmaz", "Kaya", "Demir", "Celik", "Sahin", "Ozturk",
    "Silva", "Santos", "Oliveira", "Pereira", "Costa", "Rodrigues",
    "O'Brien", "Murphy", "Kelly", "O'Sullivan", "McCarthy", "Byrne",
    "Kahale", "Makoa", "Ngata", "Parata",
    "Andersen", "Johansson", "Lindqvist", "Nilsson", "Eriksen", "Halvorsen",
)

TITLES: tuple[str, ...] = ("Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Mr", "Ms", "Dr", "Miss", "Sir")

# Capitalised words that are not personal data: the head must learn to leave them alone.
CITIES: tuple[str, ...] = (
    "Paris", "London", "Berlin", "Madrid", "Rome", "Tokyo", "Lagos", "Nairobi", "Mumbai", "Toronto",
    "Chicago", "Austin", "Boston", "Denver", "Seattle", "Lisbon", "Dublin", "Vienna", "Prague", "Oslo",
    "Sydney", "Cairo", "Istanbul", "Seoul", "Hanoi", "Lima", "Bogota", "Manchester", "Munich", "Lyon",
    "Florence", "Sevilla", "Phoenix", "Houston", "Portland", "Geneva", "Zurich", "Warsaw", "Athens",
)
COMPANIES: tuple[str, ...] = (
    "Google", "Microsoft", "Amazon", "Apple", "Netflix", "Siemens", "Toyota", "Samsung", "Oracle",
    "Spotify", "Airbnb", "Stripe", "Shopify", "Salesforce", "Nvidia", "Intel", "IBM", "SAP", "Adobe",
    "Accenture", "Deloitte", "Unilever", "Nestle", "Volkswagen", "Ikea", "Zalando", "Uber", "Lyft",
    "Ford", "Tesla", "Morgan Stanley", "Goldman Sachs", "Johnson Controls", "Procter & Gamble",
)
PRODUCTS: tuple[str, ...] = (
    "iPhone", "Galaxy S24", "ThinkPad", "PlayStation", "Kindle", "Excel", "Photoshop", "Slack",
    "Jira", "Kubernetes", "Docker", "PostgreSQL", "Redis", "Kafka", "Terraform", "Tableau",
    "Windows", "Ubuntu", "Android", "Chrome", "Firefox", "Outlook", "Teams", "Zoom", "Figma",
    "Python", "Rust", "JavaScript", "TypeScript", "Java", "Golang", "Haskell", "React", "Django",
    "Flask", "FastAPI", "Pandas", "NumPy", "PyTorch", "TensorFlow", "Spark", "Hadoop", "Linux",
)
WEEKDAYS: tuple[str, ...] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
COUNTRIES: tuple[str, ...] = (
    "France", "Germany", "Spain", "Italy", "Japan", "Nigeria", "Kenya", "India", "Canada", "Brazil",
    "Mexico", "Ireland", "Norway", "Poland", "Turkey", "Vietnam", "Egypt", "Australia", "Chile",
)
TEAMS: tuple[str, ...] = (
    "Marketing", "Finance", "Legal", "Engineering", "Sales", "Support", "HR", "Operations",
    "Procurement", "Security", "Data Science", "Customer Success",
)
BRAND_WORDS: tuple[str, ...] = (
    "Sunrise", "Bluebird", "Evergreen", "Northstar", "Silverline", "Redwood", "Atlas", "Orion",
    "Phoenix", "Summit", "Harbor", "Maple", "Aurora", "Granite", "Willow", "Falcon",
)


def split(names: tuple[str, ...], heldout: bool) -> tuple[str, ...]:
    """Train part (first 70%) or held-out part (last 30%) of a name list."""
    cut = int(len(names) * 0.7)
    return names[cut:] if heldout else names[:cut]
